//! `oasis keygen`, and the key files other commands read: the secret key
//! `oasis package --sign` signs AOT code with, and the public keys
//! `oasis serve --trust-key` runs signed code of (see
//! [`oasis_format::signature`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use oasis_format::signature::{KeyError, PublicKey, SigningKey};

use crate::{InputError, read_input};

/// `oasis keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (PKCS#8 PEM, mode 0600); the public key goes to KEY.pub.
    #[arg(value_name = "KEY")]
    pub key: PathBuf,
}

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A key file is not a key of the kind wanted.
    #[error("{}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: KeyError,
    },
    /// No key could be made.
    #[error(transparent)]
    Generate(KeyError),
    /// `oasis keygen` would overwrite a key.
    #[error("{}: exists already; keygen never overwrites a key (remove it, or name another file)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A key file cannot be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// `oasis keygen KEY`: a new signing key in KEY, its public key in KEY.pub.
pub fn keygen(args: KeygenArgs) -> Result<(), Error> {
    let public_path = public_path(&args.key);
    for path in [&args.key, &public_path] {
        if path.exists() {
            return Err(Error::Exists { path: path.clone() });
        }
    }
    let key = SigningKey::generate().map_err(Error::Generate)?;
    let secret = key.to_pem().map_err(Error::Generate)?;
    let public = key.public_key().to_pem().map_err(Error::Generate)?;
    write_new(&args.key, secret.as_bytes(), true)?;
    write_new(&public_path, public.as_bytes(), false)?;
    println!(
        "wrote {} (the secret key: keep it private) and {} (give it to the operators who run your code)\nkey {}",
        args.key.display(),
        public_path.display(),
        key.public_key().id()
    );
    Ok(())
}

/// KEY.pub next to KEY.
fn public_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes a file that must not exist yet; `secret`: readable by its owner only.
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    // Windows: a new file gets its directory's ACL, the user's profile's by default.
    #[cfg(not(unix))]
    let _ = secret;
    let write_error = |source| Error::Write { path: path.to_path_buf(), source };
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Error::Exists { path: path.to_path_buf() },
        _ => write_error(e),
    })?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(write_error)
}

/// Reads a secret key (`oasis package --sign`).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, Error> {
    let text = read_text(path)?;
    SigningKey::from_pem(&text).map_err(|source| Error::Key { path: path.to_path_buf(), source })
}

/// Reads a public key (`oasis serve --trust-key`).
pub fn read_public_key(path: &Path) -> Result<PublicKey, Error> {
    let text = read_text(path)?;
    PublicKey::from_pem(&text).map_err(|source| Error::Key { path: path.to_path_buf(), source })
}

fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = zeroize::Zeroizing::new(read_input(path)?);
    // Not UTF-8 is not PEM: the parser names it.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_pair_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("oasis-keygen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k");
        keygen(KeygenArgs { key: key.clone() }).unwrap();
        let signing = read_signing_key(&key).unwrap();
        assert_eq!(read_public_key(&dir.join("k.pub")).unwrap(), signing.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = keygen(KeygenArgs { key: key.clone() }).unwrap_err();
        assert!(matches!(again, Error::Exists { .. }), "{again}");
        assert_eq!(read_signing_key(&key).unwrap().public_key(), signing.public_key());
        // Each half where the other is wanted: named.
        let err = read_signing_key(&dir.join("k.pub")).unwrap_err().to_string();
        assert!(err.contains("k.pub") && err.contains("not an ed25519 secret key"), "{err}");
        let err = read_public_key(&key).unwrap_err().to_string();
        assert!(err.contains("not an ed25519 public key"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
