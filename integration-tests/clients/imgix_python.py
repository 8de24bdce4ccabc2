"""Builds imgix URLs and srcsets with imgix's own Python library (the
`imgix` package from PyPI, installed by scripts/install-deps.sh into
tools/python) and prints them as JSON lines for
integration-tests/tests/imgix_clients.rs, which requests each one from the
gateway. Every expectation comes from what the library asked for (its `w`
and `fm`, its srcset descriptors), never from imgmesh.

usage: python3 imgix_python.py <plain domain> <signed domain> <token> <path>
"""

import json
import sys
import time

from imgix import UrlBuilder

plain_domain, signed_domain, token, path = sys.argv[1:5]
expires = int(time.time()) + 3600
plain = UrlBuilder(plain_domain, use_https=False)
bare = UrlBuilder(plain_domain, use_https=False, include_library_param=False)
signed = UrlBuilder(signed_domain, use_https=False, sign_key=token)


def emit(kind, url, width, fmt, is_signed):
    print(json.dumps({"kind": kind, "url": url, "width": width,
                      "format": fmt, "signed": is_signed}))


def candidates(srcset):
    """A srcset's candidates: ("URL", "400w") or ("URL", "2x")."""
    for entry in srcset.split(",\n"):
        url, descriptor = entry.strip().split(" ")
        yield url, descriptor


emit("url", plain.create_url(path, {"w": 320, "fm": "webp"}), 320, "webp", False)
emit("url without ixlib", bare.create_url(path, {"w": 280, "fm": "png"}), 280, "png", False)
emit("url with txt64",
     plain.create_url(path, {"w": 300, "fm": "png", "txt64": "Hello, imgmesh!", "txt-size": 24}),
     300, "png", False)
emit("signed url", signed.create_url(path, {"w": 240, "fm": "png"}), 240, "png", True)
emit("signed url with expires",
     signed.create_url(path, {"w": 200, "fm": "jpg", "expires": expires}), 200, "jpeg", True)
# Expired an hour ago: the gateway must refuse it (imgix: 404).
emit("expired signed url",
     signed.create_url(path, {"w": 200, "fm": "jpg", "expires": expires - 7200}),
     200, "jpeg", True)
emit("signed url with txt64",
     signed.create_url(path, {"w": 260, "fm": "webp", "txt64": "signed & encoded"}),
     260, "webp", True)

# Fixed width: one candidate per dpr (1x…5x), with variable quality.
for builder, is_signed in ((plain, False), (signed, True)):
    for url, descriptor in candidates(builder.create_srcset(path, {"w": 120, "fm": "webp"})):
        dpr = float(descriptor.rstrip("x"))
        emit("dpr srcset " + descriptor, url, round(120 * dpr), "webp", is_signed)
# Fluid widths between 100 and 640, every candidate's own width.
for url, descriptor in candidates(
        plain.create_srcset(path, {"fm": "png"}, start=100, stop=640)):
    emit("fluid srcset " + descriptor, url, int(descriptor.rstrip("w")), "png", False)
for url, descriptor in candidates(
        signed.create_srcset(path, {"fm": "png"}, start=200, stop=400)):
    emit("signed fluid srcset " + descriptor, url, int(descriptor.rstrip("w")), "png", True)
for url, descriptor in candidates(
        signed.create_srcset(path, {"fm": "webp"}, widths=[150, 450])):
    emit("signed width srcset " + descriptor, url, int(descriptor.rstrip("w")), "webp", True)
