#!/usr/bin/env python3
"""An independent implementation of cosign's key files, for interop tests of ig-image's.

Written from cosign's format description (pkg/cosign/keys.go with go-securesystemslib's
`encrypted` package): a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (or `ENCRYPTED COSIGN PRIVATE
KEY`) whose body is the JSON {"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},
"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"} (base64 byte strings) around a PKCS#8
DER key; scrypt from hashlib (OpenSSL), the secretbox from PyNaCl (libsodium), keys and
signatures from `cryptography` (OpenSSL). Nothing here shares code with the Rust side.

  cosign_key.py generate PREFIX      write PREFIX.key / PREFIX.pub (ECDSA P-256)
  cosign_key.py public KEYFILE       print the PKIX PEM public key of a decrypted cosign.key
  cosign_key.py sign KEYFILE FILE    print base64 of the signature of FILE's bytes
  cosign_key.py verify PUBFILE FILE SIG_BASE64   exit 0 when the signature verifies

The password is COSIGN_PASSWORD (empty when unset).
"""
import base64
import hashlib
import json
import os
import sys

import nacl.secret
import nacl.utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
ACCEPTED_PARAMS = ({"N": 32768, "r": 8, "p": 1}, {"N": 65536, "r": 8, "p": 1}, {"N": 131072, "r": 8, "p": 1})


def password():
    return os.environ.get("COSIGN_PASSWORD", "").encode()


def scrypt_key(pw, salt, params):
    return hashlib.scrypt(pw, salt=salt, n=params["N"], r=params["r"], p=params["p"],
                          dklen=32, maxmem=512 * 1024 * 1024)


def pem_body(text, types):
    lines = text.strip().splitlines()
    begin = lines[0]
    label = begin[len("-----BEGIN "):-len("-----")]
    if not begin.startswith("-----BEGIN ") or label not in types:
        raise SystemExit(f"unsupported PEM type {label!r}")
    if lines[-1] != f"-----END {label}-----":
        raise SystemExit("PEM block not closed")
    return base64.b64decode("".join(lines[1:-1]))


def pem(label, der):
    b = base64.b64encode(der).decode()
    return f"-----BEGIN {label}-----\n" + "".join(b[i:i + 64] + "\n" for i in range(0, len(b), 64)) + f"-----END {label}-----\n"


def decrypt(path):
    with open(path) as f:
        env = json.loads(pem_body(f.read(), PEM_TYPES))
    assert env["kdf"]["name"] == "scrypt" and env["cipher"]["name"] == "nacl/secretbox", env
    params = env["kdf"]["params"]
    assert params in ACCEPTED_PARAMS, params
    key = scrypt_key(password(), base64.b64decode(env["kdf"]["salt"]), params)
    der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(env["ciphertext"]),
                                               base64.b64decode(env["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, None)


def sign(key, data):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise SystemExit(f"unsupported key {type(key).__name__}")


def verify(pub, data, sig):
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            pub.verify(sig, data)
        return True
    except InvalidSignature:
        return False


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def generate(prefix):
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = os.urandom(32), nacl.utils.random(24)
    params = {"N": 65536, "r": 8, "p": 1}
    box = nacl.secret.SecretBox(scrypt_key(password(), salt, params))
    ciphertext = box.encrypt(der, nonce).ciphertext  # tag first, as NaCl's secretbox
    env = {"kdf": {"name": "scrypt", "params": params, "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(ciphertext).decode()}
    with open(prefix + ".key", "w") as f:
        f.write(pem(PEM_TYPES[0], json.dumps(env, separators=(",", ":")).encode()))
    with open(prefix + ".pub", "w") as f:
        f.write(public_pem(key))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "generate":
        generate(args[0])
    elif cmd == "public":
        sys.stdout.write(public_pem(decrypt(args[0])))
    elif cmd == "sign":
        with open(args[1], "rb") as f:
            print(base64.b64encode(sign(decrypt(args[0]), f.read())).decode())
    elif cmd == "verify":
        with open(args[0], "rb") as f:
            pub = serialization.load_pem_public_key(f.read())
        with open(args[1], "rb") as f:
            data = f.read()
        return 0 if verify(pub, data, base64.b64decode(args[2])) else 1
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
