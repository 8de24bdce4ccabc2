"""A Python client of imgmesh's public gRPC API (imgmesh.image.v1), generated
here from the repository's protos with grpcio-tools (installed by
scripts/install-deps.sh into tools/python/grpc), as a service caller would.
Used by integration-tests/tests/render_api.rs.

It renders one derivative with Render and a srcset with RenderSet, writes
each derivative's bytes to <out dir>/<name>.bin and prints one JSON line per
derivative with what its metadata said; the Rust test checks the pixels.
A failed call prints {"error": <status code name>, "message": ...} and exits 1.

usage: python3 image_api_python.py <proto dir> <out dir> <host:port> <api key>
           <subdomain> <path> <params> <variant>...
"""

import json
import os
import sys

import grpc
import grpc_tools
from grpc_tools import protoc

proto_dir, out_dir, address, api_key, subdomain, path, params = sys.argv[1:8]
variants = sys.argv[8:]

# Generate the client from the protos, next to the outputs.
generated = os.path.join(out_dir, "generated")
os.makedirs(generated, exist_ok=True)
well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
status = protoc.main([
    "grpc_tools.protoc",
    f"-I{proto_dir}",
    f"-I{well_known}",
    f"--python_out={generated}",
    f"--grpc_python_out={generated}",
    "imgmesh/image/v1/image.proto",
    "imgmesh/renderer/v1/render_plan.proto",
])
if status != 0:
    sys.exit(f"protoc failed with {status}")
sys.path.insert(0, generated)

from imgmesh.image.v1 import image_pb2, image_pb2_grpc  # noqa: E402

CACHE_STATUS = {value: name for name, value in image_pb2.CacheStatus.items()}


def emit(name, metadata, data):
    """Writes a derivative's bytes and prints its metadata as a JSON line."""
    with open(os.path.join(out_dir, f"{name}.bin"), "wb") as out:
        out.write(data)
    print(json.dumps({
        "name": name,
        "content_type": metadata.content_type,
        "size": metadata.size,
        "width": metadata.width,
        "height": metadata.height,
        "etag": metadata.etag,
        "cache_status": CACHE_STATUS[metadata.cache_status],
        "bytes": len(data),
    }), flush=True)


def main():
    auth = [("authorization", f"Bearer {api_key}")]
    target = image_pb2.ImageTarget(subdomain=subdomain, path=path, params=params)
    with grpc.insecure_channel(address) as channel:
        stub = image_pb2_grpc.ImageServiceStub(channel)

        # Render: the first message is metadata, every later one a chunk.
        stream = stub.Render(image_pb2.RenderRequest(target=target), metadata=auth, timeout=30)
        metadata, data = None, bytearray()
        for message in stream:
            if message.WhichOneof("part") == "metadata":
                metadata = message.metadata
            else:
                data.extend(message.chunk)
        emit("render", metadata, bytes(data))

        # RenderSet: per variant, in order, its metadata then its chunks.
        request = image_pb2.RenderSetRequest(target=target, variants=variants)
        parts = {}
        for message in stub.RenderSet(request, metadata=auth, timeout=30):
            if message.WhichOneof("part") == "metadata":
                parts[message.index] = (message.metadata, bytearray())
            else:
                parts[message.index][1].extend(message.chunk)
        for index in sorted(parts):
            metadata, data = parts[index]
            emit(f"set-{index}", metadata, bytes(data))


try:
    main()
except grpc.RpcError as error:
    print(json.dumps({"error": error.code().name, "message": error.details()}), flush=True)
    sys.exit(1)
