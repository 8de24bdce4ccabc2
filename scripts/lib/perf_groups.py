"""Groups a profile's samples by what the code was doing.

Reads `perf script -F ip,sym,dso` of a `perf record --call-graph dwarf`
profile (one block of frames per sample, leaf first) and prints one
markdown row per group: "| group | % of samples |". Used by the
cpu-breakdown section of scripts/bench.sh (scripts/lib/bench_quality.sh).

Debian's libjpeg-turbo and libvips ship without their internal symbols,
so samples are placed by the library entry points on their call chain:
JPEG work under jpeg_write_scanlines / jpeg_finish_compress / … is
encoding, under jpeg_read_scanlines / jpeg_start_decompress / … decoding;
libjpeg code whose chain could not be unwound is counted apart. Copies
(memcpy, the kernel's user copies) and the allocator (malloc/free, page
faults) are charged to themselves wherever they were called from. The
first matching rule wins, in the order of the table.
"""

import re
import sys

ENCODE = re.compile(r"^jpeg_(write_scanlines|finish_compress|start_compress|write_marker|write_m_|write_icc|write_tables)")
DECODE = re.compile(r"^jpeg_(read_scanlines|start_decompress|consume_input|read_header|finish_decompress|skip_scanlines|crop_scanline|read_raw_data)")
GRPC = re.compile(r"prost|tonic|h2::|hyper|tower|http_body|axum")
TLS = re.compile(r"aws_lc|rustls|ring::|aes_|gcm|ghash|chacha|poly1305|sha256|sha512|bn_", re.I)
COPY = re.compile(r"memcpy|memmove|copy_user|_copy_to_iter|_copy_from_iter|copy_page")
ALLOC = re.compile(r"malloc|^free$|^__free|cfree|_int_free|realloc|calloc|tcache|arena|sysmalloc|consolidate|^mmap|munmap|^brk|page_fault|clear_page|do_anonymous_page|handle_mm_fault|alloc_pages|unmap_page|folio|mem_cgroup|memcg")
REDIS = re.compile(r"redis")

GROUPS = [
    "JPEG decode (libjpeg-turbo)",
    "JPEG encode (libjpeg-turbo)",
    "JPEG, caller not unwound",
    "resize and the rest of libvips",
    "colour transform (lcms2)",
    "copies (memcpy, kernel copies)",
    "allocator (malloc/free, page faults)",
    "TLS (aws-lc, rustls)",
    "Redis client",
    "gRPC / HTTP/2 / prost",
    "other (tokio, syscalls, kernel, Rust code)",
]


def classify(chain):
    """The group of one sample's call chain [(symbol, dso)], leaf first."""
    syms = [s for s, _ in chain]
    dsos = [d for _, d in chain]
    leaf, leaf_dso = chain[0]
    if COPY.search(leaf):
        return "copies (memcpy, kernel copies)"
    if ALLOC.search(leaf):
        return "allocator (malloc/free, page faults)"
    if any(ENCODE.search(s) for s in syms):
        return "JPEG encode (libjpeg-turbo)"
    if any(DECODE.search(s) for s in syms):
        return "JPEG decode (libjpeg-turbo)"
    if "libjpeg" in leaf_dso:
        return "JPEG, caller not unwound"
    if any("lcms" in d for d in dsos[:3]):
        return "colour transform (lcms2)"
    if any("libvips" in d or "libhwy" in d for d in dsos[:2]):
        return "resize and the rest of libvips"
    if any(TLS.search(s) for s in syms[:8]):
        return "TLS (aws-lc, rustls)"
    if any(REDIS.search(s) for s in syms):
        return "Redis client"
    if any(GRPC.search(s) for s in syms):
        return "gRPC / HTTP/2 / prost"
    return "other (tokio, syscalls, kernel, Rust code)"


def main():
    counts = dict.fromkeys(GROUPS, 0)
    total = 0
    chain = []
    for line in list(sys.stdin) + [""]:
        if not line.strip():
            if chain:
                counts[classify(chain)] += 1
                total += 1
            chain = []
            continue
        frame = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line.rstrip("\n"))
        if frame:
            chain.append((frame.group(1), frame.group(2)))
    for group in GROUPS:
        print("| %s | %.1f |" % (group, 100.0 * counts[group] / max(total, 1)))
    print("| (samples) | %d |" % total)


if __name__ == "__main__":
    main()
