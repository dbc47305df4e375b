//! Message signatures (SNS SignatureVersion 2: SHA256withRSA). lookout's RSA key and a self-signed
//! certificate over it are generated on first start and kept in `<data-dir>/notify/`
//! (`signing-key.pem`, PKCS#8, mode 0600; `signing-cert.pem`); the certificate is what
//! `SigningCertURL` serves, so a subscriber can verify every message it receives.

use std::path::Path;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};

pub const KEY_FILE: &str = "signing-key.pem";
pub const CERT_FILE: &str = "signing-cert.pem";
const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
#[error("signing key: {0}")]
pub struct SigningError(pub String);

/// lookout's signing key and the certificate that carries its public half.
pub struct Signer {
    key: RsaKeyPair,
    key_pem: String,
    cert_pem: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Clone for Signer {
    fn clone(&self) -> Signer {
        Signer::from_pem(&self.key_pem, &self.cert_pem).expect("a signer's own key parses again")
    }
}

/// A new 2048-bit RSA key as PKCS#8 PEM. Slow (a fraction of a second optimized, seconds unoptimized).
pub fn generate_key_pem() -> Result<String, SigningError> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
        .map_err(|e| SigningError(format!("cannot generate an rsa key: {e}")))?;
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| SigningError(format!("cannot encode the rsa key: {e}")))?;
    Ok(pem.to_string())
}

/// A self-signed certificate (PEM) over the key, valid for a century.
pub fn self_signed_cert_pem(key_pem: &str) -> Result<String, SigningError> {
    let key = rcgen::KeyPair::from_pem_and_sign_algo(key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| SigningError(format!("cannot read the rsa key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec!["lookout".to_owned()])
        .map_err(|e| SigningError(format!("cannot build the certificate: {e}")))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "lookout SNS message signing");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "lookout");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(36_500);
    let cert = params.self_signed(&key).map_err(|e| SigningError(format!("cannot sign the certificate: {e}")))?;
    Ok(cert.pem())
}

fn pem_to_der(pem: &str, label: &str) -> Result<Vec<u8>, SigningError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| SigningError(format!("no {label} in the pem")))? + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| SigningError(format!("unterminated {label} in the pem")))? + start;
    let b64: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| SigningError(format!("bad base64 in the pem: {e}")))
}

/// Writes `contents` to `path` through a temporary file and a rename (never half a file).
fn write_atomically(path: &Path, contents: &str, private: bool) -> Result<(), SigningError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = options.open(&tmp).map_err(|e| SigningError(format!("cannot write {}: {e}", tmp.display())))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| SigningError(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| SigningError(format!("cannot write {}: {e}", path.display())))
}

impl Signer {
    /// A signer over a PKCS#8 PEM RSA key and its certificate.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Signer, SigningError> {
        let der = pem_to_der(key_pem, "PRIVATE KEY")?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| SigningError(format!("not a usable rsa key: {e}")))?;
        pem_to_der(cert_pem, "CERTIFICATE")?;
        Ok(Signer { key, key_pem: key_pem.to_owned(), cert_pem: cert_pem.to_owned(), rng: SystemRandom::new() })
    }

    /// A signer with a fresh key (nothing written).
    pub fn generate() -> Result<Signer, SigningError> {
        let key_pem = generate_key_pem()?;
        let cert_pem = self_signed_cert_pem(&key_pem)?;
        Signer::from_pem(&key_pem, &cert_pem)
    }

    /// Loads the key and certificate from `dir`, generating (and writing) what is missing.
    /// Returns whether a new key was generated. Blocking.
    pub fn load_or_create(dir: &Path) -> Result<(Signer, bool), SigningError> {
        std::fs::create_dir_all(dir).map_err(|e| SigningError(format!("cannot create {}: {e}", dir.display())))?;
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let (key_pem, generated) = match std::fs::read_to_string(&key_path) {
            Ok(pem) => (pem, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = generate_key_pem()?;
                // The certificate belongs to the key: drop any left from an older key first.
                let _ = std::fs::remove_file(&cert_path);
                write_atomically(&key_path, &pem, true)?;
                (pem, true)
            }
            Err(e) => return Err(SigningError(format!("cannot read {}: {e}", key_path.display()))),
        };
        pem_to_der(&key_pem, "PRIVATE KEY")
            .and_then(|der| {
                RsaKeyPair::from_pkcs8(&der).map_err(|e| SigningError(format!("not a usable rsa key: {e}")))
            })
            .map_err(|e| SigningError(format!("{}: {}", key_path.display(), e.0)))?;
        let cert_pem = match std::fs::read_to_string(&cert_path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = self_signed_cert_pem(&key_pem)?;
                write_atomically(&cert_path, &pem, false)?;
                pem
            }
            Err(e) => return Err(SigningError(format!("cannot read {}: {e}", cert_path.display()))),
        };
        let signer = Signer::from_pem(&key_pem, &cert_pem)
            .map_err(|e| SigningError(format!("{} or {}: {}", key_path.display(), cert_path.display(), e.0)))?;
        Ok((signer, generated))
    }

    /// The base64 SHA256withRSA (PKCS#1 v1.5) signature of `data`.
    pub fn sign(&self, data: &[u8]) -> String {
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key.sign(&RSA_PKCS1_SHA256, &self.rng, data, &mut sig).expect("an rsa signature fits its modulus");
        base64::engine::general_purpose::STANDARD.encode(sig)
    }

    /// The certificate (PEM) that `SigningCertURL` serves.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate as DER.
    pub fn cert_der(&self) -> Vec<u8> {
        pem_to_der(&self.cert_pem, "CERTIFICATE").expect("checked when the signer was built")
    }
}

/// One key for all the tests of this crate (RSA generation is slow unoptimized).
#[cfg(test)]
pub(crate) fn test_signer() -> Signer {
    static KEY: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (key, cert) = KEY.get_or_init(|| {
        let key = generate_key_pem().unwrap();
        let cert = self_signed_cert_pem(&key).unwrap();
        (key, cert)
    });
    Signer::from_pem(key, cert).unwrap()
}

/// Verifies a base64 signature against a certificate, as a subscriber does.
#[cfg(test)]
pub(crate) fn verify_with_cert(cert_der: &[u8], data: &[u8], signature_b64: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64) else {
        return false;
    };
    let der = rustls_pki_types::CertificateDer::from(cert_der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    cert.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, data, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_certificate_and_only_for_their_data() {
        let s = test_signer();
        let sig = s.sign(b"Message\nhello\n");
        assert!(verify_with_cert(&s.cert_der(), b"Message\nhello\n", &sig));
        assert!(!verify_with_cert(&s.cert_der(), b"Message\nhellO\n", &sig));
        let other = Signer::from_pem(&generate_key_pem().unwrap(), s.cert_pem()).unwrap();
        assert!(!verify_with_cert(&s.cert_der(), b"Message\nhello\n", &other.sign(b"Message\nhello\n")));
    }

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, generated) = Signer::load_or_create(dir.path()).unwrap();
        assert!(generated);
        let (b, generated) = Signer::load_or_create(dir.path()).unwrap();
        assert!(!generated);
        assert_eq!(a.cert_pem(), b.cert_pem());
        assert!(verify_with_cert(&a.cert_der(), b"x", &b.sign(b"x")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A lost certificate is made again over the same key.
        std::fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let (c, generated) = Signer::load_or_create(dir.path()).unwrap();
        assert!(!generated);
        assert!(verify_with_cert(&c.cert_der(), b"y", &a.sign(b"y")));
    }

    #[test]
    fn a_damaged_key_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let e = Signer::load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("PRIVATE KEY"), "{e}");
    }
}
