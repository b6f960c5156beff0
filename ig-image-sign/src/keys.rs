//! Cosign key files, read and written exactly as `cosign generate-key-pair` does.
//!
//! - `cosign.pub`: a PKIX (`SubjectPublicKeyInfo`) public key in a `PUBLIC KEY` PEM block.
//! - `cosign.key`: a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign before 2.0 wrote
//!   `ENCRYPTED COSIGN PRIVATE KEY`; both are read) whose body is a JSON envelope
//!   `{"kdf":{"name":"scrypt","params":{"N":..,"r":8,"p":1},"salt":".."},
//!   "cipher":{"name":"nacl/secretbox","nonce":".."},"ciphertext":".."}` (byte strings in
//!   standard base64 with padding). The envelope key is scrypt(password, salt) with 32 bytes of
//!   output; the ciphertext is a NaCl secretbox (XSalsa20-Poly1305, tag first) of the PKCS#8 DER
//!   private key. Only the three scrypt parameter sets cosign's library accepts are accepted, so
//!   a hostile file cannot make us spend minutes or gigabytes deriving a key.
//!
//! Keys: ECDSA P-256 (what cosign generates; signatures are ASN.1 DER over SHA-256), RSA
//! (PKCS#1 v1.5 with SHA-256, 2048 to 4096 bits, as cosign accepts) and Ed25519. Other curves
//! are refused with a clear error.
//!
//! Secrets ([`PrivateKey`], [`Password`]) never print: their `Debug` is redacted, and their
//! bytes are zeroed when dropped. No network, no store.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use gadget_facts::env::COSIGN_PASSWORD;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, ObjectIdentifier};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use spki::{DecodePublicKey, EncodePublicKey};
use zeroize::Zeroizing;

/// PEM type of the private keys cosign 2.x writes.
pub const SIGSTORE_PRIVATE_KEY_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM type of the private keys cosign 1.x wrote (still read).
pub const COSIGN_PRIVATE_KEY_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// PEM type of public keys.
pub const PUBLIC_KEY_PEM: &str = "PUBLIC KEY";
/// The name that stands for [`UPSTREAM_PUBLIC_KEY_PEM`] in `--public-keys`.
pub const UPSTREAM_KEY_NAME: &str = "upstream";
/// Upstream Inspektor Gadget's public key: official gadgets are signed with its private half.
pub const UPSTREAM_PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoDOC0gYSxZTopenGmX3ZFvQ1DSfh
Ir4EKRt5jC+mXaJ7c7J+oREskYMn/SfZdRHNSOjLTZUMDm60zpXGhkFecg==
-----END PUBLIC KEY-----
";

const KDF_SCRYPT: &str = "scrypt";
const CIPHER_SECRETBOX: &str = "nacl/secretbox";
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const BOX_KEY_LEN: usize = 32;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;
/// Key files larger than this are not key files.
const MAX_KEY_FILE: u64 = 64 << 10;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// What went wrong with a key file, a key or a password. `what` names the file (or `the key`).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read the key file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A key file could not be written.
    #[error("cannot write the key file `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A key file exists and overwriting was not asked for.
    #[error("`{}` already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than any key file.
    #[error("{what}: {size} bytes is too large for a key file")]
    TooLarge {
        /// The file.
        what: String,
        /// Its size.
        size: u64,
    },
    /// No PEM block of the expected kind.
    #[error("{what}: no PEM block found (expected `-----BEGIN {expected}-----`)")]
    NoPem {
        /// The file.
        what: String,
        /// The PEM type wanted.
        expected: String,
    },
    /// A PEM block of another kind.
    #[error("{what}: unsupported PEM type `{found}` (expected {expected})")]
    PemType {
        /// The file.
        what: String,
        /// The PEM type found.
        found: String,
        /// The PEM types accepted.
        expected: String,
    },
    /// The PEM block is cut or its body is not base64.
    #[error("{what}: malformed PEM block: {reason}")]
    Pem {
        /// The file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The encrypted key's JSON envelope is not cosign's.
    #[error("{what}: malformed encrypted key envelope: {reason}")]
    Envelope {
        /// The file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// scrypt parameters other than the three sets cosign accepts.
    #[error(
        "{what}: unsupported scrypt parameters N={n}, r={r}, p={p} (accepted: N=32768, 65536 or 131072 with r=8, p=1)"
    )]
    KdfParams {
        /// The file.
        what: String,
        /// scrypt N.
        n: u64,
        /// scrypt r.
        r: u64,
        /// scrypt p.
        p: u64,
    },
    /// Authentication of the secretbox failed.
    #[error("{what}: cannot decrypt the private key: wrong password, or the file was altered")]
    Decrypt {
        /// The file.
        what: String,
    },
    /// The decrypted bytes (or a DER input) are not a PKCS#8 private key we can use.
    #[error("{what}: not a usable PKCS#8 private key: {reason}")]
    Pkcs8 {
        /// The file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The public key is not a PKIX public key we can use.
    #[error("{what}: not a usable PKIX public key: {reason}")]
    Spki {
        /// The file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A key algorithm or curve we do not support.
    #[error(
        "{what}: unsupported key algorithm: {algorithm} (supported: ECDSA P-256, RSA 2048-4096, Ed25519)"
    )]
    Algorithm {
        /// The file.
        what: String,
        /// The algorithm found.
        algorithm: String,
    },
    /// The password could not be read from the terminal.
    #[error("cannot read the password from the terminal")]
    Password {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The two passwords typed differ.
    #[error("the two passwords typed differ")]
    PasswordMismatch,
    /// Signing failed inside the crypto library.
    #[error("signing failed: {reason}")]
    Sign {
        /// What the library said.
        reason: String,
    },
    /// Key derivation or encryption failed inside the crypto library.
    #[error("cannot encrypt the private key: {reason}")]
    Encrypt {
        /// What the library said.
        reason: String,
    },
}

/// A private key's password. `Debug` prints `<redacted>`; the bytes are zeroed on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// A password from bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Password(Zeroizing::new(bytes.into()))
    }

    /// The password bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `COSIGN_PASSWORD` when set (even empty, as cosign), else a prompt on the terminal without
    /// echo; with `confirm` the password is asked twice (for a new key).
    pub fn from_env_or_prompt(confirm: bool) -> Result<Self, KeyError> {
        if let Some(value) = std::env::var_os(COSIGN_PASSWORD) {
            use std::os::unix::ffi::OsStringExt;
            return Ok(Password::new(value.into_vec()));
        }
        let first = Zeroizing::new(
            rpassword::prompt_password("Enter password for private key: ")
                .map_err(|source| KeyError::Password { source })?,
        );
        if confirm {
            let second = Zeroizing::new(
                rpassword::prompt_password("Enter password for private key again: ")
                    .map_err(|source| KeyError::Password { source })?,
            );
            if *first != *second {
                return Err(KeyError::PasswordMismatch);
            }
        }
        Ok(Password::new(first.as_bytes().to_vec()))
    }
}

/// A public key that can verify cosign signatures.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ECDSA on P-256, signatures ASN.1 DER over SHA-256.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// RSA, PKCS#1 v1.5 signatures with SHA-256.
    Rsa(Box<rsa::RsaPublicKey>),
    /// Ed25519 (pure).
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.algorithm(), self.key_id())
    }
}

impl PublicKey {
    /// Reads a `PUBLIC KEY` PEM block (text before it is ignored, as Go's `pem.Decode` does).
    /// `what` names the source in errors.
    pub fn from_pem(text: &[u8], what: &str) -> Result<Self, KeyError> {
        let block = pem_decode(text, what, PUBLIC_KEY_PEM)?;
        if block.label != PUBLIC_KEY_PEM {
            return Err(KeyError::PemType {
                what: what.into(),
                found: block.label,
                expected: format!("`{PUBLIC_KEY_PEM}`"),
            });
        }
        Self::from_spki_der(&block.der, what)
    }

    /// Reads a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8], what: &str) -> Result<Self, KeyError> {
        let spki_err = |reason: String| KeyError::Spki {
            what: what.into(),
            reason,
        };
        let info =
            spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|e| spki_err(e.to_string()))?;
        let oid = info.algorithm.oid;
        if oid == OID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().ok();
            if curve != Some(OID_P256) {
                return Err(KeyError::Algorithm {
                    what: what.into(),
                    algorithm: format!("ECDSA on {}", curve_name(curve)),
                });
            }
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map_err(|e| spki_err(e.to_string()))?;
            Ok(PublicKey::EcdsaP256(key))
        } else if oid == OID_RSA {
            let key =
                rsa::RsaPublicKey::from_public_key_der(der).map_err(|e| spki_err(e.to_string()))?;
            check_rsa_size(rsa::traits::PublicKeyParts::size(&key) * 8, what)?;
            Ok(PublicKey::Rsa(Box::new(key)))
        } else if oid == OID_ED25519 {
            let key = ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map_err(|e| spki_err(e.to_string()))?;
            Ok(PublicKey::Ed25519(key))
        } else {
            Err(KeyError::Algorithm {
                what: what.into(),
                algorithm: format!("OID {oid}"),
            })
        }
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let doc = match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_der(),
            PublicKey::Rsa(k) => k.to_public_key_der(),
            PublicKey::Ed25519(k) => k.to_public_key_der(),
        };
        // Encoding a valid in-memory key cannot fail.
        doc.map(|d| d.as_bytes().to_vec()).unwrap_or_default()
    }

    /// The PEM text cosign writes to `cosign.pub`.
    pub fn to_pem(&self) -> String {
        pem_encode(PUBLIC_KEY_PEM, &self.to_spki_der())
    }

    /// `ecdsa-p256`, `rsa-<bits>` or `ed25519`.
    pub fn algorithm(&self) -> String {
        match self {
            PublicKey::EcdsaP256(_) => "ecdsa-p256".into(),
            PublicKey::Rsa(k) => {
                format!("rsa-{}", rsa::traits::PublicKeyParts::size(k.as_ref()) * 8)
            }
            PublicKey::Ed25519(_) => "ed25519".into(),
        }
    }

    /// `sha256:<hex>` of the DER public key: a stable name for the key.
    pub fn key_id(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.to_spki_der())))
    }

    /// Whether `signature` is a valid signature of `message` by this key. Nothing about the
    /// message is parsed or trusted here.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match self {
            PublicKey::EcdsaP256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            PublicKey::Rsa(key) => {
                let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.as_ref().clone());
                rsa::pkcs1v15::Signature::try_from(signature)
                    .is_ok_and(|sig| verifier.verify(message, &sig).is_ok())
            }
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        }
    }
}

/// A public key with the name the user gave it (a file path or `upstream`).
#[derive(Debug, Clone)]
pub struct NamedKey {
    /// The path as given, or `upstream`.
    pub name: String,
    /// The key.
    pub key: PublicKey,
}

/// Reads public keys: each spec is a PEM file path, or `upstream` for upstream's default key.
pub fn load_public_keys(specs: &[String]) -> Result<Vec<NamedKey>, KeyError> {
    specs
        .iter()
        .map(|spec| {
            let key = if spec == UPSTREAM_KEY_NAME {
                PublicKey::from_pem(UPSTREAM_PUBLIC_KEY_PEM.as_bytes(), "the upstream key")?
            } else {
                let path = Path::new(spec);
                PublicKey::from_pem(&read_key_file(path)?, spec)?
            };
            Ok(NamedKey {
                name: spec.clone(),
                key,
            })
        })
        .collect()
}

/// A private signing key. `Debug` shows only the algorithm; the key material is zeroed on drop.
pub struct PrivateKey {
    inner: PrivateInner,
}

enum PrivateInner {
    EcdsaP256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey {{ algorithm: {}, key: <redacted> }}",
            self.public_key().algorithm()
        )
    }
}

impl PrivateKey {
    /// A new random ECDSA P-256 key (what `cosign generate-key-pair` makes).
    pub fn generate_p256() -> Self {
        PrivateKey {
            inner: PrivateInner::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        }
    }

    /// Reads a DER PKCS#8 private key.
    pub fn from_pkcs8_der(der: &[u8], what: &str) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::Pkcs8 {
            what: what.into(),
            reason,
        };
        let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| bad(e.to_string()))?;
        let oid = info.algorithm.oid;
        let inner = if oid == OID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().ok();
            if curve != Some(OID_P256) {
                return Err(KeyError::Algorithm {
                    what: what.into(),
                    algorithm: format!("ECDSA on {}", curve_name(curve)),
                });
            }
            PrivateInner::EcdsaP256(
                p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
            )
        } else if oid == OID_RSA {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?;
            check_rsa_size(rsa::traits::PublicKeyParts::size(&key) * 8, what)?;
            PrivateInner::Rsa(Box::new(key))
        } else if oid == OID_ED25519 {
            PrivateInner::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| bad(e.to_string()))?,
            )
        } else {
            return Err(KeyError::Algorithm {
                what: what.into(),
                algorithm: format!("OID {oid}"),
            });
        };
        Ok(PrivateKey { inner })
    }

    /// The DER PKCS#8 encoding (zeroed on drop).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.inner {
            PrivateInner::EcdsaP256(k) => k.to_pkcs8_der(),
            PrivateInner::Rsa(k) => k.to_pkcs8_der(),
            PrivateInner::Ed25519(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::Encrypt {
            reason: format!("cannot encode the key as PKCS#8: {e}"),
        })?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            PrivateInner::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            PrivateInner::Rsa(k) => PublicKey::Rsa(Box::new(k.to_public_key())),
            PrivateInner::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// Signs `message` as cosign does: ECDSA P-256 over SHA-256 (ASN.1 DER), RSA PKCS#1 v1.5
    /// with SHA-256, or pure Ed25519.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        use p256::ecdsa::signature::Signer as _;
        match &self.inner {
            PrivateInner::EcdsaP256(key) => {
                let sig: p256::ecdsa::Signature =
                    key.try_sign(message).map_err(|e| KeyError::Sign {
                        reason: e.to_string(),
                    })?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateInner::Rsa(key) => {
                use rsa::signature::SignatureEncoding as _;
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.as_ref().clone());
                let sig = signer.try_sign(message).map_err(|e| KeyError::Sign {
                    reason: e.to_string(),
                })?;
                Ok(sig.to_vec())
            }
            PrivateInner::Ed25519(key) => Ok(key.sign(message).to_bytes().to_vec()),
        }
    }

    /// Reads an encrypted cosign private key (`ENCRYPTED SIGSTORE PRIVATE KEY` or
    /// `ENCRYPTED COSIGN PRIVATE KEY`).
    pub fn from_encrypted_pem(
        text: &[u8],
        password: &Password,
        what: &str,
    ) -> Result<Self, KeyError> {
        let block = pem_decode(text, what, SIGSTORE_PRIVATE_KEY_PEM)?;
        if block.label != SIGSTORE_PRIVATE_KEY_PEM && block.label != COSIGN_PRIVATE_KEY_PEM {
            return Err(KeyError::PemType {
                what: what.into(),
                found: block.label,
                expected: format!("`{SIGSTORE_PRIVATE_KEY_PEM}` or `{COSIGN_PRIVATE_KEY_PEM}`"),
            });
        }
        let der = decrypt_envelope(&block.der, password, what)?;
        Self::from_pkcs8_der(&der, what)
    }

    /// The encrypted PEM text cosign writes to `cosign.key` (`ENCRYPTED SIGSTORE PRIVATE KEY`,
    /// scrypt N=65536, r=8, p=1, as current cosign).
    pub fn to_encrypted_pem(&self, password: &Password) -> Result<String, KeyError> {
        let der = self.to_pkcs8_der()?;
        let envelope = encrypt_envelope(&der, password, ScryptParams::STANDARD)?;
        Ok(pem_encode(SIGSTORE_PRIVATE_KEY_PEM, &envelope))
    }
}

/// Reads `cosign.key` from `path` and decrypts it with `password`.
pub fn load_private_key(path: &Path, password: &Password) -> Result<PrivateKey, KeyError> {
    let text = read_key_file(path)?;
    PrivateKey::from_encrypted_pem(&text, password, &path.display().to_string())
}

/// The two files of a key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    /// `<prefix>.key`.
    pub private_key: PathBuf,
    /// `<prefix>.pub`.
    pub public_key: PathBuf,
}

/// Generates an ECDSA P-256 key pair and writes `<prefix>.key` (mode 0600, encrypted with
/// `password`) and `<prefix>.pub`. Existing files are refused unless `force`.
pub fn generate_key_pair(
    prefix: &Path,
    password: &Password,
    force: bool,
) -> Result<KeyPairFiles, KeyError> {
    let files = KeyPairFiles {
        private_key: with_suffix(prefix, "key"),
        public_key: with_suffix(prefix, "pub"),
    };
    if !force {
        for path in [&files.private_key, &files.public_key] {
            if path.symlink_metadata().is_ok() {
                return Err(KeyError::Exists { path: path.clone() });
            }
        }
    }
    let key = PrivateKey::generate_p256();
    let private_pem = Zeroizing::new(key.to_encrypted_pem(password)?);
    write_file(&files.private_key, private_pem.as_bytes(), 0o600)?;
    write_file(
        &files.public_key,
        key.public_key().to_pem().as_bytes(),
        0o644,
    )?;
    Ok(files)
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let err = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // An existing file keeps its mode on open: set it, so an overwritten key is not readable.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(err)
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let read_err = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyError::TooLarge {
            what: path.display().to_string(),
            size: meta.len(),
        });
    }
    fs::read(path).map_err(read_err)
}

fn check_rsa_size(bits: usize, what: &str) -> Result<(), KeyError> {
    if (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::Algorithm {
            what: what.into(),
            algorithm: format!("RSA with {bits} bits"),
        })
    }
}

fn curve_name(oid: Option<ObjectIdentifier>) -> String {
    match oid {
        Some(o) if o == OID_P384 => "P-384".into(),
        Some(o) if o == OID_P521 => "P-521".into(),
        Some(o) => format!("the curve {o}"),
        None => "an unnamed curve".into(),
    }
}

// ------------------------------------------------------------------------------------------
// The encrypted envelope

/// scrypt parameters of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScryptParams {
    /// CPU/memory cost (a power of two).
    #[serde(rename = "N")]
    pub n: u64,
    /// Block size.
    pub r: u64,
    /// Parallelism.
    pub p: u64,
}

impl ScryptParams {
    /// N=2^15: what cosign 1.x wrote.
    pub const LEGACY: ScryptParams = ScryptParams {
        n: 32768,
        r: 8,
        p: 1,
    };
    /// N=2^16: what cosign writes now.
    pub const STANDARD: ScryptParams = ScryptParams {
        n: 65536,
        r: 8,
        p: 1,
    };
    /// N=2^17: OWASP's recommendation, also accepted by cosign.
    pub const OWASP: ScryptParams = ScryptParams {
        n: 131072,
        r: 8,
        p: 1,
    };

    fn accepted(&self) -> bool {
        [Self::LEGACY, Self::STANDARD, Self::OWASP].contains(self)
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn derive_box_key(
    password: &Password,
    salt: &[u8],
    params: ScryptParams,
    what: &str,
) -> Result<Zeroizing<[u8; BOX_KEY_LEN]>, KeyError> {
    let bad_params = || KeyError::KdfParams {
        what: what.into(),
        n: params.n,
        r: params.r,
        p: params.p,
    };
    if !params.accepted() {
        return Err(bad_params());
    }
    let log_n = u8::try_from(params.n.trailing_zeros()).map_err(|_| bad_params())?;
    // Fuzzing (fuzz/fuzz_targets/cosign_key.rs) checks the parameters like any build, then
    // derives with the lowest cost, so that inputs reaching this point stay fast.
    let log_n = if cfg!(fuzzing) { 1 } else { log_n };
    let r = u32::try_from(params.r).map_err(|_| bad_params())?;
    let p = u32::try_from(params.p).map_err(|_| bad_params())?;
    let scrypt_params = scrypt::Params::new(log_n, r, p, BOX_KEY_LEN).map_err(|_| bad_params())?;
    let mut key = Zeroizing::new([0u8; BOX_KEY_LEN]);
    scrypt::scrypt(password.as_bytes(), salt, &scrypt_params, key.as_mut()).map_err(|e| {
        KeyError::Encrypt {
            reason: e.to_string(),
        }
    })?;
    Ok(key)
}

/// Encrypts `plaintext` into cosign's JSON envelope (random salt and nonce).
pub fn encrypt_envelope(
    plaintext: &[u8],
    password: &Password,
    params: ScryptParams,
) -> Result<Vec<u8>, KeyError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let key = derive_box_key(password, &salt, params, "the new key")?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(&nonce.into(), plaintext)
        .map_err(|e| KeyError::Encrypt {
            reason: e.to_string(),
        })?;
    let envelope = Envelope {
        kdf: Kdf {
            name: KDF_SCRYPT.into(),
            params,
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: CIPHER_SECRETBOX.into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(ciphertext),
    };
    serde_json::to_vec(&envelope).map_err(|e| KeyError::Encrypt {
        reason: e.to_string(),
    })
}

/// Decrypts cosign's JSON envelope. The scrypt parameters are checked before any key
/// derivation.
pub fn decrypt_envelope(
    envelope: &[u8],
    password: &Password,
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let bad = |reason: String| KeyError::Envelope {
        what: what.into(),
        reason,
    };
    let env: Envelope = serde_json::from_slice(envelope).map_err(|e| bad(e.to_string()))?;
    if env.kdf.name != KDF_SCRYPT {
        return Err(bad(format!(
            "unknown kdf `{}` (expected `{KDF_SCRYPT}`)",
            env.kdf.name
        )));
    }
    if env.cipher.name != CIPHER_SECRETBOX {
        return Err(bad(format!(
            "unknown cipher `{}` (expected `{CIPHER_SECRETBOX}`)",
            env.cipher.name
        )));
    }
    let decode = |field: &str, value: &str| {
        B64.decode(value)
            .map_err(|e| bad(format!("`{field}` is not base64: {e}")))
    };
    let salt = decode("kdf.salt", &env.kdf.salt)?;
    let nonce = decode("cipher.nonce", &env.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &env.ciphertext)?;
    let nonce: [u8; NONCE_LEN] = nonce.as_slice().try_into().map_err(|_| {
        bad(format!(
            "the nonce has {} bytes, not {NONCE_LEN}",
            nonce.len()
        ))
    })?;
    let key = derive_box_key(password, &salt, env.kdf.params, what)?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Decrypt { what: what.into() })
}

// ------------------------------------------------------------------------------------------
// PEM

struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// The first PEM block of `text` (text around it is ignored; header lines are skipped).
fn pem_decode(text: &[u8], what: &str, expected: &str) -> Result<PemBlock, KeyError> {
    let text = String::from_utf8_lossy(text);
    let no_pem = || KeyError::NoPem {
        what: what.into(),
        expected: expected.into(),
    };
    let start = text.find("-----BEGIN ").ok_or_else(no_pem)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(no_pem)?;
    let label = rest[..label_end].to_owned();
    if label.contains('\n') {
        return Err(no_pem());
    }
    let body_and_end = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body_and_end
        .find(&end_marker)
        .ok_or_else(|| KeyError::Pem {
            what: what.into(),
            reason: format!("no `{end_marker}` line"),
        })?;
    let body: String = body_and_end[..end]
        .lines()
        .filter(|l| !l.contains(':'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let der = B64.decode(body.as_bytes()).map_err(|e| KeyError::Pem {
        what: what.into(),
        reason: format!("the body is not base64: {e}"),
    })?;
    Ok(PemBlock { label, der })
}

/// PEM as Go's `pem.EncodeToMemory` writes it: 64-character lines, a final newline.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl gadget_store::hint::Hint for KeyError {
    fn hints(&self) -> Vec<String> {
        let hint = match self {
            KeyError::Exists { .. } => {
                "pass `--force` to overwrite it, or choose another `--output-key-prefix`"
                    .to_string()
            }
            KeyError::Password { .. } => {
                "set `COSIGN_PASSWORD` (it may be empty) when there is no terminal, as in CI"
                    .to_string()
            }
            _ => return Vec::new(),
        };
        vec![hint]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/testdata");

    fn testdata(name: &str) -> Vec<u8> {
        fs::read(Path::new(TESTDATA).join(name)).unwrap()
    }

    #[test]
    fn envelope_vectors_from_go_securesystemslib_decrypt() {
        // Envelopes from go-securesystemslib's encrypted_test.go (one per accepted scrypt
        // parameter set, written by `Marshal`, so their plaintext is the JSON string of the
        // base64 of "reallyimportant"; and TestDecrypt's raw one), passphrase "supersecret".
        let text = String::from_utf8(testdata("securesystemslib-envelopes.txt")).unwrap();
        let password = Password::new("supersecret");
        let mut count = 0;
        for line in text.lines().filter(|l| l.starts_with('{')) {
            let plain = decrypt_envelope(line.as_bytes(), &password, "vector").unwrap();
            assert!(
                plain.as_slice() == b"reallyimportant"
                    || plain.as_slice() == br#""cmVhbGx5aW1wb3J0YW50""#,
                "{plain:?}"
            );
            assert!(matches!(
                decrypt_envelope(line.as_bytes(), &Password::new("wrong"), "vector"),
                Err(KeyError::Decrypt { .. })
            ));
            count += 1;
        }
        assert_eq!(count, 4);
    }

    #[test]
    fn unsupported_scrypt_parameters_are_refused_before_deriving() {
        let env = br#"{"kdf":{"name":"scrypt","params":{"N":99,"r":99,"p":99},"salt":"cZFcQJdwPhPyhU1R4qkl0qVOIjZd4V/7LYYAavq166k="},"cipher":{"name":"nacl/secretbox","nonce":"7vhRS7j0hEPBWV05skAdgLj81AkGeE7U"},"ciphertext":"6WYU/YSXVbYzl/NzaeAzmjLyfFhOOjLc0d8/GFV0aBFdJvyCcXc="}"#;
        let err = decrypt_envelope(env, &Password::new("supersecret"), "k").unwrap_err();
        assert!(matches!(err, KeyError::KdfParams { n: 99, .. }), "{err}");
    }

    #[test]
    fn cosign_generated_keys_load() {
        // From sigstore/cosign pkg/cosign/keys_test.go (password "hello").
        let password = Password::new("hello");
        let sigstore = PrivateKey::from_encrypted_pem(
            &testdata("cosign-test-sigstore.key"),
            &password,
            "cosign-test-sigstore.key",
        )
        .unwrap();
        let cosign_label = PrivateKey::from_encrypted_pem(
            &testdata("cosign-test-cosign-label.key"),
            &password,
            "cosign-test-cosign-label.key",
        )
        .unwrap();
        // cosign itself refuses this one: the envelope holds a SEC1 key, not PKCS#8.
        let err = PrivateKey::from_encrypted_pem(
            &testdata("cosign-test-cosign-ec-sec1.key"),
            &password,
            "sec1",
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::Pkcs8 { .. }), "{err}");
        // From sigstore/sigstore-rs tests: made by `cosign generate-key-pair` with an empty
        // password.
        let empty = PrivateKey::from_encrypted_pem(
            &testdata("cosign-generated-empty-password.key"),
            &Password::new(""),
            "empty",
        )
        .unwrap();
        for key in [&sigstore, &cosign_label, &empty] {
            assert_eq!(key.public_key().algorithm(), "ecdsa-p256");
            let sig = key.sign(b"payload").unwrap();
            assert!(key.public_key().verify(b"payload", &sig));
            assert!(!key.public_key().verify(b"payload!", &sig));
        }
    }

    #[test]
    fn rsa_keys_sign_and_verify_pkcs1v15_sha256() {
        let pem = testdata("cosign-test-rsa-pkcs8.pem");
        let block = pem_decode(&pem, "rsa", "PRIVATE KEY").unwrap();
        let key = PrivateKey::from_pkcs8_der(&block.der, "rsa").unwrap();
        assert_eq!(key.public_key().algorithm(), "rsa-2048");
        let password = Password::new("pw");
        let encrypted = key.to_encrypted_pem(&password).unwrap();
        let back = PrivateKey::from_encrypted_pem(encrypted.as_bytes(), &password, "rsa").unwrap();
        let public = PublicKey::from_pem(back.public_key().to_pem().as_bytes(), "rsa.pub").unwrap();
        let sig = back.sign(b"payload").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(public.verify(b"payload", &sig));
        assert!(!public.verify(b"payload2", &sig));
    }

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("cosign");
        let password = Password::new("correct horse");
        let files = generate_key_pair(&prefix, &password, false).unwrap();
        let text = fs::read_to_string(&files.private_key).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(text.lines().all(|l| l.len() <= 64));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&files.private_key)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let envelope = pem_decode(text.as_bytes(), "k", "x").unwrap().der;
        let json: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        assert_eq!(
            json["kdf"]["params"],
            serde_json::json!({"N": 65536, "r": 8, "p": 1})
        );
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            B64.decode(json["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );

        let key = load_private_key(&files.private_key, &password).unwrap();
        let public = load_public_keys(&[files.public_key.display().to_string()]).unwrap();
        assert_eq!(public[0].key, key.public_key());
        let sig = key.sign(b"hello").unwrap();
        assert!(public[0].key.verify(b"hello", &sig));

        let err = generate_key_pair(&prefix, &password, false).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        generate_key_pair(&prefix, &password, true).unwrap();
        assert_ne!(
            load_private_key(&files.private_key, &password)
                .unwrap()
                .public_key(),
            key.public_key(),
            "--force writes a new key"
        );
    }

    #[test]
    fn wrong_password_is_refused() {
        let key = PrivateKey::generate_p256();
        let pem = key.to_encrypted_pem(&Password::new("right")).unwrap();
        let err = PrivateKey::from_encrypted_pem(pem.as_bytes(), &Password::new("wrong"), "k")
            .unwrap_err();
        assert!(matches!(err, KeyError::Decrypt { .. }), "{err}");
        assert!(err.to_string().contains("wrong password"), "{err}");
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let key = PrivateKey::generate_p256();
        let password = Password::new("pw");
        let pem = key.to_encrypted_pem(&password).unwrap();
        let envelope = pem_decode(pem.as_bytes(), "k", "x").unwrap().der;
        let mut json: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        let mut ct = B64.decode(json["ciphertext"].as_str().unwrap()).unwrap();
        ct[20] ^= 1;
        json["ciphertext"] = B64.encode(ct).into();
        let tampered = pem_encode(
            SIGSTORE_PRIVATE_KEY_PEM,
            &serde_json::to_vec(&json).unwrap(),
        );
        let err = PrivateKey::from_encrypted_pem(tampered.as_bytes(), &password, "k").unwrap_err();
        assert!(matches!(err, KeyError::Decrypt { .. }), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let key = PrivateKey::generate_p256();
        let der = key.to_pkcs8_der().unwrap();
        let shown = format!("{key:?} {:?}", Password::new("hunter2"));
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains(&hex::encode(&der[der.len() - 32..])));
    }

    #[test]
    fn upstream_key_and_other_algorithms() {
        let keys = load_public_keys(&["upstream".to_string()]).unwrap();
        assert_eq!(keys[0].key.algorithm(), "ecdsa-p256");
        assert_eq!(keys[0].key.to_pem(), UPSTREAM_PUBLIC_KEY_PEM);

        let ed = PrivateKey {
            inner: PrivateInner::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        };
        let pem = ed.public_key().to_pem();
        let back = PublicKey::from_pem(pem.as_bytes(), "ed").unwrap();
        assert!(back.verify(b"m", &ed.sign(b"m").unwrap()));
        let round = PrivateKey::from_pkcs8_der(&ed.to_pkcs8_der().unwrap(), "ed").unwrap();
        assert_eq!(round.public_key(), back);

        let err = PublicKey::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "c",
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::PemType { .. }), "{err}");
        let err = PublicKey::from_pem(b"garbage", "g").unwrap_err();
        assert!(matches!(err, KeyError::NoPem { .. }), "{err}");
    }

    #[test]
    fn pem_is_read_as_go_reads_it() {
        // Text before and after, header lines (with and without the blank line after them),
        // the body re-wrapped at 20 columns: cosign (Go's pem.Decode) reads all of these.
        let body = UPSTREAM_PUBLIC_KEY_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let wrapped: Vec<&str> = body
            .as_bytes()
            .chunks(20)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        for headers in ["Comment: x\n\n", "Comment: x\n", ""] {
            let text = format!(
                "upstream key:\n-----BEGIN PUBLIC KEY-----\n{headers}{}\n-----END PUBLIC KEY-----\n\ntrailer\n",
                wrapped.join("\n")
            );
            let key = PublicKey::from_pem(text.as_bytes(), "k").unwrap();
            assert_eq!(key.to_pem(), UPSTREAM_PUBLIC_KEY_PEM);
        }

        let cut = "-----BEGIN PUBLIC KEY-----\nAAAA\n";
        let err = PublicKey::from_pem(cut.as_bytes(), "cut").unwrap_err();
        assert!(matches!(err, KeyError::Pem { .. }), "{err}");
        assert!(
            err.to_string().contains("-----END PUBLIC KEY-----"),
            "{err}"
        );
        let bad = "-----BEGIN PUBLIC KEY-----\nA*A=\n-----END PUBLIC KEY-----\n";
        let err = PublicKey::from_pem(bad.as_bytes(), "bad").unwrap_err();
        assert!(matches!(err, KeyError::Pem { .. }), "{err}");
    }
}
