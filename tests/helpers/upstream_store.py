#!/usr/bin/env python3
"""Lays out signed gadget images the way upstream Inspektor Gadget's own signed test store is
laid out (pkg/signature/testdata/oci-store), with signatures made here, independently of
ig-image, in the three cosign formats.

  upstream_store.py IN.tar OUT.tar KEY_PREFIX

IN.tar is an OCI layout export holding at least three tagged image indexes. They become, in tag
order, `ttl.sh/signed_with_cosign_legacy:latest`, `ttl.sh/signed_with_cosign_oci11:latest` and
`ttl.sh/signed_with_cosign_bundle:latest`, each signed with a fresh ECDSA P-256 key (its PKIX PEM
public key is written to KEY_PREFIX.pub) in the format its name says:

- legacy: a simple-signing manifest tagged with the **bare** tag `sha256-<hex>.sig`;
- oci11: a simple-signing referrer (config media type `application/vnd.dev.cosign.artifact.sig.v1+json`,
  no `artifactType`, as cosign writes it), reachable only through the bare referrers-tag index
  `sha256-<hex>`;
- bundle: a sigstore bundle v0.3 referrer (DSSE envelope over an in-toto statement), listed
  untagged and in the bare referrers index `sha256-<hex>`, whose descriptor there carries the
  `artifactType` `application/vnd.oci.empty.v1+json`, as cosign's own index does.

The legacy image also carries a notation signature (an untagged referrer listed in its own
`sha256-<hex>` index), and every per-platform manifest is listed untagged, as oras lists them.
Prints one JSON line: {"legacy": digest, "oci11": digest, "bundle": digest}.
Needs python3 with `cryptography`. No network.
"""
import base64
import hashlib
import io
import json
import sys
import tarfile

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REF = "org.opencontainers.image.ref.name"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_OCI11 = "application/vnd.dev.cosign.artifact.sig.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
NOTATION = "application/vnd.cncf.notary.signature"
IN_TOTO = "application/vnd.in-toto+json"


def go_json(doc):
    """JSON the way Go's encoding/json writes it: compact, keys in the order given."""
    return json.dumps(doc, separators=(",", ":")).encode()


class Layout:
    def __init__(self, path):
        self.blobs = {}
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                data = tar.extractfile(m).read()
                name = m.name.lstrip("./")
                if name == "index.json":
                    self.index = json.loads(data)
                elif name.startswith("blobs/sha256/"):
                    self.blobs["sha256:" + name.rsplit("/", 1)[1]] = data
        self.entries = []

    def put(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def write(self, path):
        index = go_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": self.entries})
        with tarfile.open(path, "w") as tar:
            def add(name, data):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
            add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add("index.json", index)
            for digest, data in sorted(self.blobs.items()):
                add("blobs/sha256/" + digest[7:], data)


def sign(key, data):
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def cosign_config(payload_digest):
    # The config go-containerregistry's empty image gets with one layer (what cosign pushes).
    return go_json({"architecture": "", "created": "0001-01-01T00:00:00Z",
                    "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                    "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
                    "config": {}})


def simple_signing_layer(layout, key, repo, digest):
    payload = go_json({"critical": {"identity": {"docker-reference": repo},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None})
    p = layout.put(payload)
    return {"mediaType": SIMPLESIGNING, "size": p["size"], "digest": p["digest"],
            "annotations": {"dev.cosignproject.cosign/signature": sign(key, payload)}}


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def main():
    src, out, prefix = sys.argv[1:4]
    layout = Layout(src)
    images = [e for e in layout.index["manifests"]
              if (e.get("annotations") or {}).get(REF) and e.get("mediaType") == INDEX
              and not e["annotations"][REF].startswith("sha256-")]
    images.sort(key=lambda e: e["annotations"][REF])
    if len(images) < 3:
        raise SystemExit(f"{src}: needs three tagged image indexes, has {len(images)}")

    key = ec.generate_private_key(ec.SECP256R1())
    with open(prefix + ".pub", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))

    result = {}
    for fmt, image in zip(["legacy", "oci11", "bundle"], images):
        repo = f"ttl.sh/signed_with_cosign_{fmt}"
        digest = image["digest"]
        hexd = digest[7:]
        subject = {"mediaType": INDEX, "size": image["size"], "digest": digest}
        layout.entries.append({"mediaType": INDEX, "digest": digest, "size": image["size"],
                               "annotations": {REF: repo + ":latest"}})
        for child in json.loads(layout.blobs[digest])["manifests"]:
            layout.entries.append(child)  # per-platform manifests, untagged, as oras lists them
        result[fmt] = digest

        if fmt == "legacy":
            layer = simple_signing_layer(layout, key, repo, digest)
            config = layout.put(cosign_config(layer["digest"]))
            manifest = layout.put(go_json({
                "schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [layer]}))
            layout.entries.append({"mediaType": MANIFEST, **manifest,
                                   "annotations": {REF: f"sha256-{hexd}.sig"}})
            # A notation signature beside it, in the image's referrers-tag index.
            envelope = layout.put(b'{"payload":"notation test envelope","signatures":[]}')
            empty = layout.put(b"{}")
            notation = layout.put(go_json({
                "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": NOTATION,
                "config": {"mediaType": EMPTY, **empty},
                "layers": [{"mediaType": "application/jose+json", **envelope}],
                "subject": subject,
                "annotations": {"org.opencontainers.image.created": "2025-10-20T12:42:42Z"}}))
            listed = {"mediaType": MANIFEST, **notation, "artifactType": NOTATION,
                      "annotations": {"org.opencontainers.image.created": "2025-10-20T12:42:42Z"}}
            layout.entries.append({"mediaType": MANIFEST, **notation, "artifactType": NOTATION})
            index = layout.put(go_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [listed]}))
            layout.entries.append({"mediaType": INDEX, **index, "annotations": {REF: f"sha256-{hexd}"}})
        elif fmt == "oci11":
            layer = simple_signing_layer(layout, key, repo, digest)
            config = layout.put(cosign_config(layer["digest"]))
            manifest = layout.put(go_json({
                "schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": COSIGN_OCI11, **config},
                "layers": [layer], "subject": subject}))
            index = layout.put(go_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
                {"mediaType": MANIFEST, **manifest, "artifactType": COSIGN_OCI11}]}))
            layout.entries.append({"mediaType": INDEX, **index, "annotations": {REF: f"sha256-{hexd}"}})
        else:
            statement = go_json({"_type": "https://in-toto.io/Statement/v1",
                                 "subject": [{"name": repo, "digest": {"sha256": hexd}}],
                                 "predicateType": "https://sigstore.dev/cosign/sign/v1",
                                 "predicate": {}})
            hint = base64.b64encode(hashlib.sha256(key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()).decode()
            bundle = layout.put(go_json({
                "mediaType": BUNDLE,
                "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
                "dsseEnvelope": {"payload": base64.b64encode(statement).decode(), "payloadType": IN_TOTO,
                                 "signatures": [{"sig": sign(key, pae(IN_TOTO, statement))}]}}))
            empty = layout.put(b"{}")
            manifest = layout.put(go_json({
                "schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": EMPTY, **empty, "artifactType": BUNDLE},
                "layers": [{"mediaType": BUNDLE, **bundle}],
                "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                                "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
                "subject": subject, "artifactType": BUNDLE}))
            layout.entries.append({"mediaType": MANIFEST, **manifest, "artifactType": EMPTY})
            index = layout.put(go_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
                {"mediaType": MANIFEST, **manifest, "artifactType": EMPTY}]}))
            layout.entries.append({"mediaType": INDEX, **index, "annotations": {REF: f"sha256-{hexd}"}})

    layout.write(out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
