#!/usr/bin/env python3
"""A private Sigstore instance for the keyless tests, made with pyca/cryptography only.

Writes two files into OUT_DIR:

- trusted_root.json: a Sigstore trusted root (mediaType ...trustedroot+json;version=0.1) naming
  our own Fulcio-like CA (a root and an intermediate), our own Rekor log key and our own
  certificate transparency log key;
- bundle.sigstore.json: a Sigstore bundle v0.3 (the format cosign writes) signing PAYLOAD (an
  in-toto statement) as a DSSE envelope with a short-lived leaf certificate. The leaf carries the
  identity as its SAN (an email address, or a URI when it has a scheme), the OIDC issuer in
  Fulcio's extensions 1.3.6.1.4.1.57264.1.1 and .1.8, the code-signing EKU and an embedded SCT
  signed by our CT log over the precertificate. The Rekor entry is a dsse/0.0.1 body, integrated
  at a fixed time with a signed entry timestamp, and included in a 7-entry RFC 6962 Merkle tree
  with an inclusion proof and a signed checkpoint.

With --expired-leaf, the leaf's validity ends 20 minutes before the log integrated the entry
(the "leaf certificate expired at the signing time" case).

Nothing here is shared with ig-image's verifier (sigstore-verify, Rust): an independent
producer of the formats, so that a verification success means the formats agree.

Usage: sigstore_keyless.py PAYLOAD OUT_DIR --identity ID --issuer URL [--expired-leaf]
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

IN_TOTO = "application/vnd.in-toto+json"
FULCIO_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
CT_PRECERT_SCTS = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
LOG_ORIGIN = "rekor.ig-image.test - 4242"


def b64(data):
    return base64.b64encode(data).decode()


def spki(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def der_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der(tag, content):
    return bytes([tag]) + der_length(len(content)) + content


def name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ig-image.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def ca_certificate(subject, key, issuer, issuer_key, path_length, start, end, eku):
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def leaf_builder(leaf_key, issuer_cert, identity, issuer_url, start, end, serial):
    if "://" in identity:
        san = x509.UniformResourceIdentifier(identity)
    else:
        san = x509.RFC822Name(identity)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_cert.public_key()
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        # Fulcio's OIDC issuer: raw bytes in .1.1 (deprecated), a DER UTF8String in .1.8.
        .add_extension(
            x509.UnrecognizedExtension(FULCIO_ISSUER_V1, issuer_url.encode()),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(
                FULCIO_ISSUER_V2, der(0x0C, issuer_url.encode())
            ),
            critical=False,
        )
    )


def leaf_certificate(leaf_key, issuer_cert, issuer_key, ct_key, identity, issuer_url, start, end):
    """The leaf with one embedded SCT (RFC 6962 3.3): the CT log signs the TBS certificate
    without the SCT extension (the precertificate) and the issuer's key hash."""
    serial = x509.random_serial_number()
    precert = leaf_builder(
        leaf_key, issuer_cert, identity, issuer_url, start, end, serial
    ).sign(issuer_key, hashes.SHA256())
    timestamp_ms = int(start.timestamp() * 1000)
    issuer_key_hash = hashlib.sha256(spki_of(issuer_cert)).digest()
    tbs = precert.tbs_certificate_bytes
    signed = (
        bytes([0, 0])  # v1, certificate_timestamp
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 1)  # precert_entry
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack(">H", 0)  # no extensions
    )
    signature = sign(ct_key, signed)
    sct = (
        bytes([0])
        + hashlib.sha256(spki(ct_key)).digest()
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 0)
        + bytes([4, 3])  # sha256, ecdsa
        + struct.pack(">H", len(signature))
        + signature
    )
    sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
    leaf = (
        leaf_builder(leaf_key, issuer_cert, identity, issuer_url, start, end, serial)
        .add_extension(
            x509.UnrecognizedExtension(CT_PRECERT_SCTS, der(0x04, sct_list)),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    # The verifier rebuilds the precertificate by dropping the SCT extension: it must give
    # back exactly the TBS the log signed.
    assert leaf.tbs_certificate_bytes != tbs
    return leaf


def spki_of(cert):
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves):
    """RFC 6962 2.1 Merkle tree hash of leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(index, leaves):
    """RFC 6962 2.1.1 audit path of leaf `index`, leaf to root."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return inclusion_path(index, leaves[:k]) + [merkle_root(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [merkle_root(leaves[:k])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("payload")
    parser.add_argument("out_dir")
    parser.add_argument("--identity", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--expired-leaf", action="store_true")
    args = parser.parse_args()
    with open(args.payload, "rb") as f:
        payload = f.read()

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    minute = datetime.timedelta(minutes=1)
    # The log integrated the entry two minutes ago (never in the future: the verifier refuses).
    integrated = now - 2 * minute
    if args.expired_leaf:
        leaf_start, leaf_end = integrated - 30 * minute, integrated - 20 * minute
    else:
        leaf_start, leaf_end = integrated - 3 * minute, integrated + 7 * minute
    ca_start, ca_end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    rekor_key = ec.generate_private_key(ec.SECP256R1())
    ct_key = ec.generate_private_key(ec.SECP256R1())

    root_name = name("ig-image test fulcio root")
    root = ca_certificate(root_name, root_key, root_name, root_key, 1, ca_start, ca_end, False)
    intermediate = ca_certificate(
        name("ig-image test fulcio intermediate"),
        intermediate_key,
        root_name,
        root_key,
        0,
        ca_start,
        ca_end,
        True,
    )
    leaf = leaf_certificate(
        leaf_key,
        intermediate,
        intermediate_key,
        ct_key,
        args.identity,
        args.issuer,
        leaf_start,
        leaf_end,
    )

    signature = sign(leaf_key, pae(IN_TOTO, payload))
    envelope = {
        "payload": b64(payload),
        "payloadType": IN_TOTO,
        "signatures": [{"sig": b64(signature), "keyid": ""}],
    }

    # The Rekor dsse/0.0.1 entry, as Rekor canonicalizes it (sorted keys, no spaces).
    body = json.dumps(
        {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(
                        json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
                    ).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [
                    {"signature": b64(signature), "verifier": b64(pem(leaf))}
                ],
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()

    # A small log: our entry among others, at index 4 of 7.
    log_index, tree_size = 4, 7
    leaves = [leaf_hash(os.urandom(64)) for _ in range(tree_size)]
    leaves[log_index] = leaf_hash(body)
    root_hash = merkle_root(leaves)
    proof = inclusion_path(log_index, leaves)

    rekor_spki = spki(rekor_key)
    log_id = hashlib.sha256(rekor_spki).digest()
    note = f"{LOG_ORIGIN}\n{tree_size}\n{b64(root_hash)}\n"
    note_signature = sign(rekor_key, note.encode())
    checkpoint = f"{note}\n\u2014 rekor.ig-image.test {b64(log_id[:4] + note_signature)}\n"
    set_payload = json.dumps(
        {
            "body": b64(body),
            "integratedTime": int(integrated.timestamp()),
            "logID": log_id.hex(),
            "logIndex": log_index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()

    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [
                {
                    "logIndex": str(log_index),
                    "logId": {"keyId": b64(log_id)},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": str(int(integrated.timestamp())),
                    "inclusionPromise": {
                        "signedEntryTimestamp": b64(sign(rekor_key, set_payload))
                    },
                    "inclusionProof": {
                        "logIndex": str(log_index),
                        "rootHash": b64(root_hash),
                        "treeSize": str(tree_size),
                        "hashes": [b64(h) for h in proof],
                        "checkpoint": {"envelope": checkpoint},
                    },
                    "canonicalizedBody": b64(body),
                }
            ],
            "timestampVerificationData": {},
        },
        "dsseEnvelope": envelope,
    }

    def log_key(key, base_url):
        raw = spki(key)
        return {
            "baseUrl": base_url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(raw),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": ca_start.strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
            "logId": {"keyId": b64(hashlib.sha256(raw).digest())},
        }

    trusted_root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log_key(rekor_key, "https://rekor.ig-image.test")],
        "certificateAuthorities": [
            {
                "subject": {"organization": "ig-image.test", "commonName": "ig-image test fulcio"},
                "uri": "https://fulcio.ig-image.test",
                "certChain": {
                    "certificates": [
                        {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))}
                        for c in (intermediate, root)
                    ]
                },
                "validFor": {"start": ca_start.strftime("%Y-%m-%dT%H:%M:%SZ")},
            }
        ],
        "ctlogs": [log_key(ct_key, "https://ctfe.ig-image.test")],
        "timestampAuthorities": [],
    }

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "bundle.sigstore.json"), "w") as f:
        json.dump(bundle, f, indent=2)
    with open(os.path.join(args.out_dir, "trusted_root.json"), "w") as f:
        json.dump(trusted_root, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
