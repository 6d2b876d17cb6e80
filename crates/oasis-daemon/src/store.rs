//! The state directory: the daemon's desired state on disk, written before
//! any change is acknowledged, so that a daemon killed at any point and
//! started again brings back what it was told.
//!
//! ```text
//! STATE_DIR/
//!   lock                  held (flock) by the daemon that uses the directory
//!   token                 the bearer token of `--control tcp:` (mode 0600)
//!   control.sock          the default control socket (Unix, mode 0600)
//!   packages/DIGEST       uploaded packages, by the SHA-256 of their bytes
//!   code/DIGEST-FP        native code the daemon compiled from a package's
//!                         module, by the module's digest and the engine's fingerprint
//!   tenants/NAME.json     one deployment each
//! ```
//!
//! Every file is written whole to a temporary name, synced, renamed over the
//! old one and the directory synced: after a crash a file is the old one or
//! the new one, never a mix. Packages and code are content-addressed, so
//! they are written once and never changed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::{TenantSpec, check_digest, check_name};

/// Whether a deployed tenant should be running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Running (and started again on the daemon's start).
    Running,
    /// Stopped by the operator (`oasis stop`): left stopped on the daemon's start.
    Stopped,
}

/// One tenant as the operator last asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The tenant's name.
    pub name: String,
    /// How it runs.
    pub spec: TenantSpec,
    /// 1 for the first deploy, one more with each deploy of the name since.
    pub revision: u64,
    /// Running or stopped.
    pub desired: Desired,
    /// How its app ended, if it ended and its restart policy let it stay
    /// ended: the daemon's next start leaves it so, as it was (`oasis start`
    /// or a deploy runs it again). A daemon that shuts down records no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<FinalEnd>,
}

/// The end a tenant stayed ended after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalEnd {
    /// What happened, as `oasis ps` says it (`exited with status 3`).
    pub exit: String,
    /// Whether it counts as a failure (a non-zero status, or stopped by the host).
    pub failed: bool,
}

/// A state directory that cannot be used, or a file in it that cannot be
/// written or read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory cannot be made or opened.
    #[error("state directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Another daemon holds the directory's lock.
    #[error(
        "state directory {}: another `oasis serve` uses it (its lock is held); stop that one or give --state-dir another directory",
        .0.display()
    )]
    Locked(PathBuf),
    /// A file cannot be written or read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A deployment file that does not parse (written by another version, or damaged).
    #[error("{}: not a deployment this daemon reads ({reason}); move it away to start without it", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The SHA-256 of `bytes`, as lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// An open state directory (see the module docs), locked for this process.
pub struct StateDir {
    root: PathBuf,
    /// Held for as long as the directory is in use.
    _lock: File,
}

impl StateDir {
    /// Opens (making it if need be) and locks the state directory `root`.
    pub fn open(root: &Path) -> Result<StateDir, StoreError> {
        let dir_error = |source| StoreError::Dir { path: root.to_path_buf(), source };
        for sub in ["", "packages", "code", "tenants"] {
            make_private_dir(&root.join(sub)).map_err(dir_error)?;
        }
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::File { path: lock_path.clone(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(root.to_path_buf())),
            Err(fs::TryLockError::Error(source)) => return Err(StoreError::File { path: lock_path, source }),
        }
        Ok(StateDir { root: root.to_path_buf(), _lock: lock })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the package with this digest is kept.
    fn package_path(&self, digest: &str) -> PathBuf {
        self.root.join("packages").join(digest)
    }

    /// Keeps `bytes`, whose digest the caller checked is `digest`.
    pub fn put_package(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.package_path(digest);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, bytes)
    }

    /// The package with this digest, if it was uploaded.
    pub fn package(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if check_digest(digest).is_err() {
            return Ok(None);
        }
        read_if_there(&self.package_path(digest))
    }

    /// Where native code compiled from a module is cached.
    fn code_path(&self, module_digest: &str, fingerprint: &str) -> PathBuf {
        // The fingerprint names the engine and its settings: keep only what a
        // file name may hold.
        let fp: String = fingerprint.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        self.root.join("code").join(format!("{module_digest}-{fp}"))
    }

    /// Native code this daemon compiled from the module with this digest.
    pub fn code(&self, module_digest: &str, fingerprint: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read_if_there(&self.code_path(module_digest, fingerprint))
    }

    /// Keeps native code compiled from the module with this digest.
    pub fn put_code(&self, module_digest: &str, fingerprint: &str, code: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.code_path(module_digest, fingerprint), code)
    }

    fn tenant_path(&self, name: &str) -> PathBuf {
        self.root.join("tenants").join(format!("{name}.json"))
    }

    /// Records `deployment`; when this returns, it survives a crash.
    pub fn save(&self, deployment: &Deployment) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(deployment).expect("a deployment serialises");
        text.push(b'\n');
        write_atomically(&self.tenant_path(&deployment.name), &text)
    }

    /// Forgets tenant `name`; when this returns, the removal survives a crash.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let path = self.tenant_path(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().expect("a tenant file is in tenants/"))
                .map_err(|source| StoreError::File { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::File { path, source }),
        }
    }

    /// Every recorded deployment, by name.
    pub fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        let dir = self.root.join("tenants");
        let entries = fs::read_dir(&dir).map_err(|source| StoreError::Dir { path: dir.clone(), source })?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Dir { path: dir.clone(), source })?;
            let path = entry.path();
            // Temporary files of a write a crash cut short are not deployments.
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let text = fs::read(&path).map_err(|source| StoreError::File { path: path.clone(), source })?;
            let deployment: Deployment = serde_json::from_slice(&text)
                .map_err(|e| StoreError::Corrupt { path: path.clone(), reason: e.to_string() })?;
            if deployment.name != name || check_name(name).is_err() {
                let reason = format!("it names tenant `{}`", deployment.name);
                return Err(StoreError::Corrupt { path, reason });
            }
            found.push(deployment);
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    /// The bearer token for TCP control: the one in `token`, or a new random
    /// one written there (mode 0600) on first use.
    pub fn token(&self) -> Result<String, StoreError> {
        let path = self.root.join("token");
        if let Some(bytes) = read_if_there(&path)? {
            let token = String::from_utf8_lossy(&bytes).trim().to_string();
            if !token.is_empty() {
                return Ok(token);
            }
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)
            .map_err(|e| StoreError::File { path: path.clone(), source: io::Error::other(e.to_string()) })?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        write_atomically(&path, format!("{token}\n").as_bytes())?;
        Ok(token)
    }
}

/// Makes `dir` (readable by its owner only, on Unix) if it is not there.
fn make_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::File { path: path.to_path_buf(), source }),
    }
}

/// Writes `bytes` to `path` so that after a crash `path` holds either its
/// old contents or all of `bytes` (see the module docs). Files are private
/// to the daemon's user.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let err = |source| StoreError::File { path: path.to_path_buf(), source };
    let dir = path.parent().expect("a state file is in a directory");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per write, not only per process: two requests may write the
    // same content-addressed file at once (two uploads of one package).
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    // Windows has no directory handles to sync: its renames are journaled.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The state directory when none is given: `OASIS_STATE_DIR`, else
/// `$XDG_STATE_HOME/oasis`, else `~/.local/state/oasis` (on Windows
/// `%LOCALAPPDATA%\oasis`).
pub fn default_state_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("OASIS_STATE_DIR") {
        return dir;
    }
    if cfg!(windows)
        && let Some(local) = var("LOCALAPPDATA")
    {
        return local.join("oasis");
    }
    if let Some(state) = var("XDG_STATE_HOME") {
        return state.join("oasis");
    }
    match var("HOME") {
        Some(home) => home.join(".local").join("state").join("oasis"),
        None => PathBuf::from(".oasis-state"),
    }
}

/// The control listener when none is given: the state directory's
/// `control.sock` on Unix; TCP on loopback port 7070 on Windows, which has
/// no Unix sockets for tokio.
pub fn default_control(state_dir: &Path) -> String {
    if cfg!(unix) {
        format!("unix:{}", state_dir.join("control.sock").display())
    } else {
        "tcp:127.0.0.1:7070".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RestartPolicy;

    fn temp() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("oasis-store-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn deployment(name: &str) -> Deployment {
        Deployment {
            ended: None,
            name: name.to_string(),
            spec: TenantSpec { package: "ab".repeat(32), restart: RestartPolicy::Always, ..TenantSpec::default() },
            revision: 1,
            desired: Desired::Running,
        }
    }

    #[test]
    fn deployments_survive_reopening_and_removal_sticks() {
        let root = temp();
        {
            let state = StateDir::open(&root).unwrap();
            state.save(&deployment("b")).unwrap();
            state.save(&deployment("a")).unwrap();
            state.save(&Deployment { revision: 2, desired: Desired::Stopped, ..deployment("a") }).unwrap();
            state.remove("b").unwrap();
            state.remove("never-was").unwrap();
            // A write a crash cut short leaves only a temporary file.
            fs::write(root.join("tenants/.c.json.1.tmp"), b"{").unwrap();
        }
        let state = StateDir::open(&root).unwrap();
        let all = state.deployments().unwrap();
        assert_eq!(all, vec![Deployment { revision: 2, desired: Desired::Stopped, ..deployment("a") }]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn one_file_written_by_many_threads_at_once() {
        let root = temp();
        let state = std::sync::Arc::new(StateDir::open(&root).unwrap());
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let state = state.clone();
                std::thread::spawn(move || state.put_code("m", "fp", b"same code"))
            })
            .collect();
        for w in writers {
            w.join().unwrap().expect("every writer succeeds");
        }
        assert_eq!(state.code("m", "fp").unwrap().as_deref(), Some(&b"same code"[..]));
        drop(state);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn one_daemon_per_directory() {
        let root = temp();
        let _first = StateDir::open(&root).unwrap();
        assert!(matches!(StateDir::open(&root), Err(StoreError::Locked(_))));
        drop(_first);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn damaged_files_are_named() {
        let root = temp();
        let state = StateDir::open(&root).unwrap();
        fs::write(root.join("tenants/x.json"), b"{\"name\":").unwrap();
        let err = state.deployments().unwrap_err();
        assert!(matches!(&err, StoreError::Corrupt { path, .. } if path.ends_with("x.json")), "{err}");
        let other = serde_json::to_vec(&deployment("y")).unwrap();
        fs::write(root.join("tenants/x.json"), &other).unwrap();
        assert!(matches!(state.deployments(), Err(StoreError::Corrupt { .. })), "a file must name its own tenant");
        drop(state);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn packages_code_and_token() {
        let root = temp();
        let state = StateDir::open(&root).unwrap();
        assert_eq!(digest(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let d = digest(b"pkg");
        assert_eq!(state.package(&d).unwrap(), None);
        state.put_package(&d, b"pkg").unwrap();
        assert_eq!(state.package(&d).unwrap().as_deref(), Some(&b"pkg"[..]));
        assert_eq!(state.package("../lock").unwrap(), None, "only digests name packages");
        state.put_code(&d, "x86_64/wasmtime 48", b"code").unwrap();
        assert_eq!(state.code(&d, "x86_64/wasmtime 48").unwrap().as_deref(), Some(&b"code"[..]));
        let token = state.token().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(state.token().unwrap(), token, "the token is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(root.join("token")).unwrap().permissions().mode() & 0o777, 0o600);
        }
        fs::remove_dir_all(&root).unwrap();
    }
}
