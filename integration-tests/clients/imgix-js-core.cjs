// Builds imgix URLs and srcsets with imgix's own JavaScript library
// (@imgix/js-core, pinned in tools/package.json) and prints them as JSON
// lines for integration-tests/tests/imgix_clients.rs, which requests each
// one from the gateway. Every expectation here comes from what the library
// asked for (its `w` and `fm`, its srcset descriptors), never from imgmesh.
//
// usage: node imgix-js-core.cjs <plain domain> <signed domain> <token> <path>
"use strict";
const ImgixClient = require("@imgix/js-core");

const [plainDomain, signedDomain, token, path] = process.argv.slice(2);
const expires = Math.floor(Date.now() / 1000) + 3600;
const plain = new ImgixClient({ domain: plainDomain, useHTTPS: false });
const bare = new ImgixClient({
  domain: plainDomain,
  useHTTPS: false,
  includeLibraryParam: false,
});
const signed = new ImgixClient({
  domain: signedDomain,
  useHTTPS: false,
  secureURLToken: token,
});

function emit(kind, url, width, format, isSigned) {
  process.stdout.write(
    JSON.stringify({ kind, url, width, format, signed: isSigned }) + "\n",
  );
}

// A srcset's candidates: "URL 400w" or "URL 2x".
function candidates(srcset) {
  return srcset.split(",\n").map((entry) => {
    const [url, descriptor] = entry.trim().split(" ");
    return { url, descriptor };
  });
}

emit("url", plain.buildURL(path, { w: 320, fm: "webp" }), 320, "webp", false);
emit("url without ixlib", bare.buildURL(path, { w: 280, fm: "png" }), 280, "png", false);
emit(
  "url with txt64",
  plain.buildURL(path, { w: 300, fm: "png", txt64: "Hello, imgmesh!", "txt-size": 24 }),
  300,
  "png",
  false,
);
emit("signed url", signed.buildURL(path, { w: 240, fm: "png" }), 240, "png", true);
emit(
  "signed url with expires",
  signed.buildURL(path, { w: 200, fm: "jpg", expires }),
  200,
  "jpeg",
  true,
);
// Expired an hour ago: the gateway must refuse it (imgix: 404).
emit(
  "expired signed url",
  signed.buildURL(path, { w: 200, fm: "jpg", expires: expires - 7200 }),
  200,
  "jpeg",
  true,
);
emit(
  "signed url with txt64",
  signed.buildURL(path, { w: 260, fm: "webp", txt64: "signed & encoded" }),
  260,
  "webp",
  true,
);

// Fixed width: one candidate per dpr (1x…5x), with variable quality.
for (const [client, isSigned] of [
  [plain, false],
  [signed, true],
]) {
  for (const { url, descriptor } of candidates(client.buildSrcSet(path, { w: 120, fm: "webp" }))) {
    const dpr = Number(descriptor.replace(/x$/, ""));
    emit(`dpr srcset ${descriptor}`, url, Math.round(120 * dpr), "webp", isSigned);
  }
}
// Fluid widths between 100 and 640, every candidate's own width.
for (const { url, descriptor } of candidates(
  plain.buildSrcSet(path, { fm: "png" }, { minWidth: 100, maxWidth: 640 }),
)) {
  emit(`fluid srcset ${descriptor}`, url, Number(descriptor.replace(/w$/, "")), "png", false);
}
for (const { url, descriptor } of candidates(
  signed.buildSrcSet(path, { fm: "png" }, { minWidth: 200, maxWidth: 400 }),
)) {
  emit(`signed fluid srcset ${descriptor}`, url, Number(descriptor.replace(/w$/, "")), "png", true);
}
for (const { url, descriptor } of candidates(
  signed.buildSrcSet(path, { fm: "webp" }, { widths: [150, 450] }),
)) {
  emit(`signed width srcset ${descriptor}`, url, Number(descriptor.replace(/w$/, "")), "webp", true);
}
