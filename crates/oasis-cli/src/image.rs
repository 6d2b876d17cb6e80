//! `oasis image`: one bootable PVH ELF — the Oasis kernel with an app's package.
//!
//! The kernel (`host-xen`, built by `cargo xtask kernel`) is a static x86_64
//! ELF with a Xen PVH entry note. It carries one 32-byte descriptor in its
//! loaded data: the 16-byte magic [`DESCRIPTOR_MAGIC`], then the physical
//! address and size (little-endian u64) of the package, both zero in the plain
//! kernel. Embedding
//!
//! 1. re-packages the app with only what the kernel needs: manifest, module,
//!    assets and AOT code for `x86_64-unknown-none` made by an engine with the
//!    kernel's fingerprint (reused from the package if it matches, else
//!    compiled here with the same `engine_config` the kernel uses);
//! 2. appends the package to the file at a page-aligned offset, as a new
//!    PT_LOAD segment at the first page-aligned physical address above every
//!    existing segment (so it overlaps neither the kernel nor its bss);
//! 3. appends a copy of the program header table with that segment added and
//!    points `e_phoff`/`e_phnum` at it (the original table has no spare slot);
//! 4. writes the segment's address and size into the descriptor.
//!
//! PVH loaders (QEMU `-kernel`, Xen's libelf) load every PT_LOAD segment, so
//! the package is in RAM before the kernel's first instruction; the kernel
//! keeps its heap off that range. The plain kernel also boots with the package
//! as its first PVH module (QEMU `-initrd`).

use std::path::{Path, PathBuf};

use clap::Args;

use oasis_format::image as pvh;

use oasis_format::limits::display_size;
use oasis_format::package::{Package, PackageBuilder, PackageError, SectionKind};
use oasis_runtime::WasmtimeError;
use oasis_runtime::config::EngineProfile;
use oasis_runtime::load::LoadError;
use oasis_runtime::tenant::RuntimeError;

use crate::pack::EngineError;
use crate::{InputError, read_input};

/// `oasis image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The package (.oasis).
    pub package: PathBuf,
    /// Where to write the image (an ELF kernel for `qemu-system-x86_64 -kernel` or Xen `type = "pvh"`).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The Oasis PVH kernel (default: oasis-xen-kernel.elf next to this binary).
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Also write an `xl` domain configuration that boots the image.
    #[arg(long, value_name = "FILE")]
    pub xen_config: Option<PathBuf>,
    /// Arguments for the app, written into the xl configuration's command line
    /// (under QEMU pass them with `-append "-- ARGS"`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Why `oasis image` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The package or the kernel cannot be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The package is damaged or invalid.
    #[error("{}: {source}", path.display())]
    Package {
        /// The package's file.
        path: PathBuf,
        /// What is wrong.
        source: PackageError,
    },
    /// No runtime to check the package with.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The package does not load (so it would not run in the image either).
    #[error("{}: {source}", path.display())]
    Load {
        /// The package's file.
        path: PathBuf,
        /// Why.
        source: LoadError,
    },
    /// No engine for the kernel's target.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The module cannot be compiled for the kernel.
    #[error("cannot compile the module for {KERNEL_TARGET} ({why}): {source}")]
    Compile {
        /// Why it had to be compiled.
        why: WhyCompile,
        /// Wasmtime's error.
        source: WasmtimeError,
    },
    /// The kernel file is not one a package can be embedded in.
    #[error("{}: {source}", path.display())]
    Kernel {
        /// The kernel's file.
        path: PathBuf,
        /// What is wrong with it.
        source: EmbedError,
    },
    /// Where this `oasis` is cannot be found, so neither can its kernel.
    #[error("cannot find the oasis binary: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// No kernel next to this `oasis`, and no `--kernel`.
    #[error("no kernel at {}: build it with `cargo xtask kernel`, or pass --kernel PATH", path.display())]
    NoKernel {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The image's path cannot go into an xl configuration.
    #[error("{}: path is not UTF-8", path.display())]
    PathNotUtf8 {
        /// The image's path.
        path: PathBuf,
    },
    /// A file cannot be written (or a path made absolute).
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Why the package's module is compiled for the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyCompile {
    /// Its AOT code for the kernel's target was made by another engine.
    OtherEngine {
        /// The fingerprint of the package's code.
        found: String,
        /// The kernel's fingerprint.
        needed: String,
    },
    /// It has no AOT code for the kernel's target.
    NoAot,
}

impl std::fmt::Display for WhyCompile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WhyCompile::OtherEngine { found, needed } => {
                write!(f, "its AOT code was made by {found} (the kernel needs {needed})")
            }
            WhyCompile::NoAot => f.write_str("it has no AOT code for it"),
        }
    }
}

/// Why a package cannot be embedded in a kernel file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    /// Not an Oasis PVH kernel, for the reason given.
    #[error("not an Oasis PVH kernel ({0})")]
    NotKernel(&'static str),
    /// A package is embedded already.
    #[error("this kernel already has a package embedded: use the plain kernel")]
    AlreadyEmbedded,
    /// The package would end above the 4 GiB the kernel maps.
    #[error("the package does not fit below 4 GiB")]
    TooHigh,
}

/// The target the kernel runs on.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// File name of the kernel next to the `oasis` binary.
pub const KERNEL_FILE: &str = "oasis-xen-kernel.elf";
/// Marks the package descriptor in the kernel ([`oasis_format::image`]).
pub const DESCRIPTOR_MAGIC: &[u8; 16] = &pvh::MAGIC;

const PT_LOAD: u32 = 1;
const PF_R: u32 = 4;
const PHDR_SIZE: usize = 56;
const PAGE: u64 = 4096;

/// `oasis image PACKAGE -o IMAGE`.
pub fn execute(args: ImageArgs) -> Result<(), Error> {
    let input = read_input(&args.package)?;
    let package = Package::parse(&input).map_err(|source| Error::Package { path: args.package.clone(), source })?;
    let name = package.manifest.name.clone();
    let version = package.manifest.version.clone();
    // Everything the host checks before running an app (ABI, imports, manifest)
    // is checked here too, by loading it natively: an image that cannot run
    // must not be built.
    let runtime = oasis_host_std::native_runtime(None, true)?;
    runtime.load(&input, &name).map_err(|source| Error::Load { path: args.package.clone(), source })?;

    let (slim, code_note) = kernel_package(&package)?;
    let kernel_path = match &args.kernel {
        Some(path) => path.clone(),
        None => default_kernel()?,
    };
    let kernel = read_input(&kernel_path)?;
    let image = embed(&kernel, &slim).map_err(|source| Error::Kernel { path: kernel_path.clone(), source })?;

    let tmp = args.output.with_extension("tmp");
    std::fs::write(&tmp, &image).map_err(|source| Error::Write { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, &args.output).map_err(|source| Error::Write { path: args.output.clone(), source })?;
    println!(
        "image {name} {version} -> {} ({}: kernel {}, package {}, {code_note})",
        args.output.display(),
        display_size(image.len() as u64),
        display_size(kernel.len() as u64),
        display_size(slim.len() as u64),
    );
    if let Some(cfg) = &args.xen_config {
        write_xl_config(cfg, &name, &args.output, package.manifest.limits.memory_bytes, &args.args)?;
        println!("xl config -> {}", cfg.display());
    }
    Ok(())
}

/// The package as the kernel needs it: AOT code for [`KERNEL_TARGET`] with the
/// kernel's fingerprint, no code for other targets.
fn kernel_package(package: &Package<'_>) -> Result<(Vec<u8>, &'static str), Error> {
    let profile = EngineProfile::for_target(KERNEL_TARGET).map_err(EngineError::from)?;
    let fingerprint = profile.fingerprint();
    let (code, note) = match package.aot_for(KERNEL_TARGET) {
        Some(aot) if aot.fingerprint == fingerprint => (aot.code.to_vec(), "AOT code from the package"),
        found => {
            let code = crate::pack::engine_for(&profile)?.precompile_module(package.module).map_err(|e| {
                let why = match found {
                    Some(aot) => {
                        WhyCompile::OtherEngine { found: aot.fingerprint.to_string(), needed: fingerprint.clone() }
                    }
                    None => WhyCompile::NoAot,
                };
                Error::Compile { why, source: e.into() }
            })?;
            (
                code,
                if found.is_some() {
                    "AOT code recompiled: the package's was made by another engine"
                } else {
                    "AOT code compiled now"
                },
            )
        }
    };
    let mut builder = PackageBuilder::new(package.manifest_text.to_string(), package.module.to_vec());
    for section in package.sections.iter().filter(|s| s.kind == SectionKind::Asset) {
        builder.asset(section.name.to_string(), section.data.to_vec());
    }
    builder.aot(KERNEL_TARGET, &fingerprint, code);
    Ok((builder.build(), note))
}

/// The kernel next to the running `oasis` binary.
fn default_kernel() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(Error::CurrentExe)?;
    let path = exe.with_file_name(KERNEL_FILE);
    if !path.is_file() {
        return Err(Error::NoKernel { path });
    }
    Ok(path)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Builds the image: `kernel` with `package` as an extra PT_LOAD segment (see
/// the module docs).
pub fn embed(kernel: &[u8], package: &[u8]) -> Result<Vec<u8>, EmbedError> {
    let not_kernel = EmbedError::NotKernel;
    if kernel.get(..4) != Some(b"\x7fELF") {
        return Err(not_kernel("no ELF header"));
    }
    if kernel.get(4) != Some(&2) || kernel.get(5) != Some(&1) || u16_at(kernel, 18) != Some(62) {
        return Err(not_kernel("not a little-endian x86_64 ELF64 file"));
    }
    let phoff = u64_at(kernel, 0x20).ok_or_else(|| not_kernel("truncated header"))? as usize;
    let phentsize = u16_at(kernel, 0x36).ok_or_else(|| not_kernel("truncated header"))? as usize;
    let phnum = u16_at(kernel, 0x38).ok_or_else(|| not_kernel("truncated header"))? as usize;
    if phentsize != PHDR_SIZE || phnum == 0 || phnum >= 0xffff {
        return Err(not_kernel("unexpected program header table"));
    }
    let table = phoff
        .checked_add(phnum * PHDR_SIZE)
        .and_then(|end| kernel.get(phoff..end))
        .ok_or_else(|| not_kernel("program headers outside the file"))?;

    // Where the descriptor is: exactly one magic, inside a loaded segment's file data.
    let mut hits = kernel.windows(DESCRIPTOR_MAGIC.len()).enumerate().filter(|(_, w)| *w == DESCRIPTOR_MAGIC);
    let desc = match (hits.next(), hits.next()) {
        (Some((at, _)), None) => at,
        (None, _) => return Err(not_kernel("no package descriptor: build it with `cargo xtask kernel`")),
        (Some(_), Some(_)) => return Err(not_kernel("more than one package descriptor")),
    };
    let mut top = 0u64;
    let mut desc_loaded = false;
    for ph in table.chunks_exact(PHDR_SIZE) {
        if u32_at(ph, 0) != Some(PT_LOAD) {
            continue;
        }
        let (offset, paddr) = (u64_at(ph, 8).unwrap_or(0), u64_at(ph, 24).unwrap_or(0));
        let (filesz, memsz) = (u64_at(ph, 32).unwrap_or(0), u64_at(ph, 40).unwrap_or(0));
        top = top.max(paddr.saturating_add(memsz));
        if (offset..offset.saturating_add(filesz)).contains(&(desc as u64)) {
            desc_loaded = true;
        }
    }
    if !desc_loaded {
        return Err(not_kernel("the package descriptor is not in a loaded segment"));
    }
    if u64_at(kernel, desc + pvh::SIZE_OFFSET) != Some(0) {
        return Err(EmbedError::AlreadyEmbedded);
    }

    let paddr = top.next_multiple_of(PAGE);
    // The kernel identity-maps 4 GiB; a package beyond it could not be read.
    if paddr.saturating_add(package.len() as u64) > 4 << 30 {
        return Err(EmbedError::TooHigh);
    }
    let mut out = kernel.to_vec();
    out.resize((out.len() as u64).next_multiple_of(PAGE) as usize, 0);
    let offset = out.len() as u64;
    out.extend_from_slice(package);
    out.resize(out.len().next_multiple_of(8), 0);
    let new_phoff = out.len() as u64;
    out.extend_from_slice(table);
    let mut ph = [0u8; PHDR_SIZE];
    ph[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
    ph[4..8].copy_from_slice(&PF_R.to_le_bytes());
    ph[8..16].copy_from_slice(&offset.to_le_bytes());
    ph[16..24].copy_from_slice(&paddr.to_le_bytes()); // vaddr = paddr: identity-mapped
    ph[24..32].copy_from_slice(&paddr.to_le_bytes());
    ph[32..40].copy_from_slice(&(package.len() as u64).to_le_bytes());
    ph[40..48].copy_from_slice(&(package.len() as u64).to_le_bytes());
    ph[48..56].copy_from_slice(&PAGE.to_le_bytes());
    out.extend_from_slice(&ph);
    out[0x20..0x28].copy_from_slice(&new_phoff.to_le_bytes());
    out[0x38..0x3a].copy_from_slice(&((phnum + 1) as u16).to_le_bytes());
    out[desc + pvh::PADDR_OFFSET..desc + pvh::SIZE_OFFSET].copy_from_slice(&paddr.to_le_bytes());
    out[desc + pvh::SIZE_OFFSET..desc + pvh::DESCRIPTOR_LEN].copy_from_slice(&(package.len() as u64).to_le_bytes());
    Ok(out)
}

/// Writes an `xl` domain configuration that boots `image` as a PVH guest.
fn write_xl_config(path: &Path, name: &str, image: &Path, memory_limit: u64, args: &[String]) -> Result<(), Error> {
    let image = std::path::absolute(image).map_err(|source| Error::Write { path: image.to_path_buf(), source })?;
    let image = image.to_str().ok_or_else(|| Error::PathNotUtf8 { path: image.clone() })?;
    // The app's memory limit plus room for the kernel, its heap overhead and the package.
    let memory_mib = (memory_limit >> 20) + 64;
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = format!(
        "# Boots the Oasis app `{name}` as a Xen PVH guest: xl create {}\n\
         name = \"{}\"\ntype = \"pvh\"\nkernel = \"{}\"\nmemory = {memory_mib}\nvcpus = 1\n\
         on_poweroff = \"destroy\"\non_crash = \"destroy\"\non_reboot = \"destroy\"\n",
        quote(&path.display().to_string()),
        quote(name),
        quote(image),
    );
    if !args.is_empty() {
        text.push_str(&format!("cmdline = \"-- {}\"\n", quote(&args.join(" "))));
    }
    std::fs::write(path, text).map_err(|source| Error::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 x86_64 file with one PT_LOAD holding a descriptor.
    fn fake_kernel() -> Vec<u8> {
        let mut k = vec![0u8; 0x200];
        k[..4].copy_from_slice(b"\x7fELF");
        k[4] = 2;
        k[5] = 1;
        k[18] = 62;
        k[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        k[0x36..0x38].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        k[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        k[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        k[ph + 8..ph + 16].copy_from_slice(&0u64.to_le_bytes());
        k[ph + 24..ph + 32].copy_from_slice(&0x100000u64.to_le_bytes());
        k[ph + 32..ph + 40].copy_from_slice(&0x200u64.to_le_bytes());
        k[ph + 40..ph + 48].copy_from_slice(&0x5000u64.to_le_bytes());
        k[0x100..0x110].copy_from_slice(DESCRIPTOR_MAGIC);
        k
    }

    #[test]
    fn embedding_adds_a_segment_and_fills_the_descriptor() {
        let image = embed(&fake_kernel(), b"package!").unwrap();
        assert_eq!(u16_at(&image, 0x38), Some(2));
        let phoff = u64_at(&image, 0x20).unwrap() as usize;
        let ph = phoff + PHDR_SIZE;
        let offset = u64_at(&image, ph + 8).unwrap() as usize;
        assert_eq!(&image[offset..offset + 8], b"package!");
        assert_eq!(u64_at(&image, ph + 24), Some(0x105000));
        assert_eq!(u64_at(&image, 0x110), Some(0x105000));
        assert_eq!(u64_at(&image, 0x118), Some(8));
        // A second embedding into an image is refused.
        assert_eq!(embed(&image, b"x"), Err(EmbedError::AlreadyEmbedded));
    }

    #[test]
    fn non_kernels_are_refused() {
        assert_eq!(embed(b"hello", b"p"), Err(EmbedError::NotKernel("no ELF header")));
        let mut k = fake_kernel();
        k[0x100] = b'X';
        let err = embed(&k, b"p").unwrap_err();
        assert!(matches!(err, EmbedError::NotKernel(why) if why.contains("no package descriptor")), "{err}");
    }
}
