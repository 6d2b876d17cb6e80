//! `oasis image`: one bootable PVH ELF — the Oasis kernel with the packages
//! of one or more apps (`PKG [OPTIONS] [-- ARGS] :: PKG …`).
//!
//! The kernel (`host-xen`, built by `cargo xtask kernel`) is a static x86_64
//! ELF with a Xen PVH entry note. It carries one 32-byte descriptor in its
//! loaded data ([`oasis_format::image`]): the 16-byte magic
//! [`DESCRIPTOR_MAGIC`], then the physical address and size (little-endian
//! u64) of its payload, both zero in the plain kernel. Embedding
//!
//! 1. re-packages each app with only what the kernel needs: manifest, module,
//!    assets and AOT code for `x86_64-unknown-none` made by an engine with the
//!    kernel's fingerprint (reused from the package if it matches, else
//!    compiled here with the same `engine_config` the kernel uses);
//! 2. puts the packages, with each app's name and the operator's settings
//!    (`-e`, `--memory`, `--cpu-ms-per-call`, `--deny`, arguments), into one
//!    bundle ([`oasis_format::image::bundle`]);
//! 3. appends the bundle to the file at a page-aligned offset, as a new
//!    PT_LOAD segment at the first page-aligned physical address above every
//!    existing segment (so it overlaps neither the kernel nor its bss);
//! 4. appends a copy of the program header table with that segment added and
//!    points `e_phoff`/`e_phnum` at it (the original table has no spare slot);
//! 5. writes the segment's address and size into the descriptor.
//!
//! PVH loaders (QEMU `-kernel`, Xen's libelf) load every PT_LOAD segment, so
//! the bundle is in RAM before the kernel's first instruction; the kernel
//! keeps its heap off that range. The plain kernel also boots with a package
//! or a bundle as its first PVH module (QEMU `-initrd`).

use std::path::{Path, PathBuf};

use clap::Args;

use oasis_format::image as pvh;
use oasis_format::image::bundle::{self, Bundle, BundleError, SettingError, Settings};

use oasis_format::limits::{LimitError, display_size};
use oasis_format::package::{Package, PackageBuilder, PackageError, SectionKind};
use oasis_runtime::WasmtimeError;
use oasis_runtime::config::EngineProfile;
use oasis_runtime::load::LoadError;
use oasis_runtime::tenant::{Runtime, RuntimeError};

use crate::apps::{AppOptions, AppSettings, OptionError};
use crate::pack::EngineError;
use crate::{InputError, read_input};

/// `oasis image`: one app's part of the command line (see [`crate::apps`]).
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The package (.oasis).
    pub package: PathBuf,
    /// Where to write the image (an ELF kernel for `qemu-system-x86_64 -kernel` or Xen `type = "pvh"`); once per image.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The Oasis PVH kernel (default: oasis-xen-kernel.elf next to this binary).
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Also write an `xl` domain configuration that boots the image.
    #[arg(long, value_name = "FILE")]
    pub xen_config: Option<PathBuf>,
    /// Environment, limits and withheld capabilities.
    #[command(flatten)]
    pub options: AppOptions,
    /// Arguments for the app, stored in the image (with one app, words after
    /// `--` on the kernel command line replace them).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Why `oasis image` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option of the image's (`-o`, `--kernel`, `--xen-config`) given by more than one app.
    #[error("{flag} is given {times} times: it is the image's, give it once (after any of the packages)")]
    GivenTwice {
        /// The option.
        flag: &'static str,
        /// How often it is given.
        times: usize,
    },
    /// No `-o`.
    #[error(
        "no -o IMAGE: say where to write the image{}",
        if *after_args { " (an `-o` after `--` is an argument of the app: put `-o` before `--`)" } else { "" }
    )]
    NoOutput {
        /// Whether an `-o` was given after `--`, where it is the app's.
        after_args: bool,
    },
    /// `-e`, `--memory` or `--deny` that does not parse.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// A setting the kernel would refuse (as `oasis run` refuses it).
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The limits (the manifest's with the options') are out of range.
    #[error(transparent)]
    Limits(LimitError),
    /// The apps cannot be put into one bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
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
    /// An error about one app of several, which it names.
    #[error("{}: {error}", app.display())]
    InApp {
        /// The app's package.
        app: PathBuf,
        /// The error.
        #[source]
        error: Box<Error>,
    },
}

impl Error {
    /// This error as one about app `args` of several, saying which (unless
    /// it does already: a package, load or input error names the file).
    fn in_app(self, args: &ImageArgs) -> Error {
        match self {
            Error::Package { .. } | Error::Load { .. } | Error::Input(_) | Error::InApp { .. } => self,
            error => Error::InApp { app: args.package.clone(), error: Box::new(error) },
        }
    }
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

/// Why a payload cannot be embedded in a kernel file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    /// Not an Oasis PVH kernel, for the reason given.
    #[error("not an Oasis PVH kernel ({0})")]
    NotKernel(&'static str),
    /// An Oasis PVH kernel whose descriptor is of an older version: it
    /// would not read the payload this `oasis` writes.
    #[error("this kernel is older than this oasis (its descriptor is not v2): rebuild it with `cargo xtask kernel`")]
    OldKernel,
    /// A package is embedded already.
    #[error("this kernel already has a package embedded: use the plain kernel")]
    AlreadyEmbedded,
    /// The payload would end above the 4 GiB the kernel maps.
    #[error("the apps do not fit below 4 GiB")]
    TooHigh,
}

/// The target the kernel runs on.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// File name of the kernel next to the `oasis` binary.
pub const KERNEL_FILE: &str = "oasis-xen-kernel.elf";
/// Marks the payload descriptor in the kernel ([`oasis_format::image`]).
pub const DESCRIPTOR_MAGIC: &[u8; 16] = &pvh::MAGIC;

const PT_LOAD: u32 = 1;
const PF_R: u32 = 4;
const PHDR_SIZE: usize = 56;
const PAGE: u64 = 4096;

/// What the image as a whole is told: given once, by any one app's options.
#[derive(Debug, PartialEq, Eq)]
struct ImageOptions {
    output: PathBuf,
    kernel: Option<PathBuf>,
    xen_config: Option<PathBuf>,
}

impl ImageOptions {
    /// The image's options out of the apps' command lines.
    fn of(apps: &[ImageArgs]) -> Result<ImageOptions, Error> {
        let once = |flag: &'static str, given: Vec<&PathBuf>| -> Result<Option<PathBuf>, Error> {
            match given[..] {
                [] => Ok(None),
                [one] => Ok(Some(one.clone())),
                _ => Err(Error::GivenTwice { flag, times: given.len() }),
            }
        };
        let output = once("-o", apps.iter().filter_map(|a| a.output.as_ref()).collect())?.ok_or_else(|| {
            let after_args = apps.iter().any(|a| a.args.iter().any(|w| w == "-o" || w.starts_with("--output")));
            Error::NoOutput { after_args }
        })?;
        Ok(ImageOptions {
            output,
            kernel: once("--kernel", apps.iter().filter_map(|a| a.kernel.as_ref()).collect())?,
            xen_config: once("--xen-config", apps.iter().filter_map(|a| a.xen_config.as_ref()).collect())?,
        })
    }
}

/// An app's settings from its options, checked as `oasis run` checks them.
fn settings(args: &ImageArgs) -> Result<Settings, Error> {
    let AppSettings { env, memory, cpu_ms_per_call, deny } = args.options.check()?;
    let settings = Settings { args: args.args.clone(), env, memory_bytes: memory, cpu_ms_per_call, deny };
    settings.check()?;
    Ok(settings)
}

/// One app, ready for the bundle.
struct Prepared {
    name: String,
    version: String,
    settings: Settings,
    /// The package as the kernel needs it ([`kernel_package`]).
    package: Vec<u8>,
    /// Where its AOT code came from.
    code_note: &'static str,
    /// The memory limit it runs under.
    memory_bytes: u64,
}

/// Reads, checks and re-packages one app.
fn prepare(args: &ImageArgs, runtime: &Runtime) -> Result<Prepared, Error> {
    let settings = settings(args)?;
    let input = read_input(&args.package)?;
    let package = Package::parse(&input).map_err(|source| Error::Package { path: args.package.clone(), source })?;
    let name = package.manifest.name.clone();
    // Everything the host checks before running an app (ABI, imports, manifest)
    // is checked here too, by loading it natively: an image that cannot run
    // must not be built.
    runtime.load(&input, &name).map_err(|source| Error::Load { path: args.package.clone(), source })?;
    let limits = settings.limits(package.manifest.limits);
    limits.validate().map_err(Error::Limits)?;
    let (slim, code_note) = kernel_package(&package)?;
    Ok(Prepared {
        name,
        version: package.manifest.version.clone(),
        settings,
        package: slim,
        code_note,
        memory_bytes: limits.memory_bytes,
    })
}

/// `oasis image PKG [OPTIONS] [-- ARGS] [:: PKG [OPTIONS] [-- ARGS]]… -o IMAGE`.
pub fn execute(apps: Vec<ImageArgs>) -> Result<(), Error> {
    let options = ImageOptions::of(&apps)?;
    let runtime = oasis_host_std::native_runtime(None, true)?;
    let several = apps.len() > 1;
    let mut prepared = Vec::with_capacity(apps.len());
    for args in &apps {
        let app = prepare(args, &runtime);
        prepared.push(if several { app.map_err(|e| e.in_app(args))? } else { app? });
    }
    crate::apps::name_uniquely(prepared.iter_mut().map(|p| &mut p.name));
    let tenants: Vec<bundle::Tenant<'_>> = prepared
        .iter()
        .map(|p| bundle::Tenant { name: &p.name, settings: p.settings.clone(), package: &p.package })
        .collect();
    let bundle = Bundle::build(&tenants)?;

    let kernel_path = match &options.kernel {
        Some(path) => path.clone(),
        None => default_kernel()?,
    };
    let kernel = read_input(&kernel_path)?;
    let image = embed(&kernel, &bundle).map_err(|source| Error::Kernel { path: kernel_path.clone(), source })?;

    let output = &options.output;
    let tmp = output.with_extension("tmp");
    std::fs::write(&tmp, &image).map_err(|source| Error::Write { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, output).map_err(|source| Error::Write { path: output.clone(), source })?;
    let names: Vec<String> = prepared.iter().map(|p| format!("{} {}", p.name, p.version)).collect();
    let sizes = format!("{}: kernel {}", display_size(image.len() as u64), display_size(kernel.len() as u64));
    match &prepared[..] {
        [one] => println!(
            "image {} -> {} ({sizes}, package {}, {})",
            names[0],
            output.display(),
            display_size(one.package.len() as u64),
            one.code_note
        ),
        _ => {
            println!(
                "image {} -> {} ({sizes}, {} apps {})",
                names.join(" + "),
                output.display(),
                prepared.len(),
                display_size(bundle.len() as u64)
            );
            for p in &prepared {
                println!("  {}: package {}, {}", p.name, display_size(p.package.len() as u64), p.code_note);
            }
        }
    }
    if let Some(cfg) = &options.xen_config {
        let name = prepared.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join("-");
        let memory = prepared.iter().map(|p| p.memory_bytes).sum();
        // With one app, its arguments also go on the command line, where they
        // can be changed without building the image again.
        let args = match &apps[..] {
            [one] => one.args.as_slice(),
            _ => &[],
        };
        write_xl_config(cfg, &name, output, memory, args)?;
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

/// Builds the image: `kernel` with `payload` (a bundle, or a package) as an
/// extra PT_LOAD segment (see the module docs).
pub fn embed(kernel: &[u8], payload: &[u8]) -> Result<Vec<u8>, EmbedError> {
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
        (None, _) if kernel.windows(pvh::MAGIC_PREFIX.len()).any(|w| w == pvh::MAGIC_PREFIX) => {
            return Err(EmbedError::OldKernel);
        }
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
    // The kernel identity-maps 4 GiB; apps beyond it could not be read.
    if paddr.saturating_add(payload.len() as u64) > 4 << 30 {
        return Err(EmbedError::TooHigh);
    }
    let mut out = kernel.to_vec();
    out.resize((out.len() as u64).next_multiple_of(PAGE) as usize, 0);
    let offset = out.len() as u64;
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(8), 0);
    let new_phoff = out.len() as u64;
    out.extend_from_slice(table);
    let mut ph = [0u8; PHDR_SIZE];
    ph[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
    ph[4..8].copy_from_slice(&PF_R.to_le_bytes());
    ph[8..16].copy_from_slice(&offset.to_le_bytes());
    ph[16..24].copy_from_slice(&paddr.to_le_bytes()); // vaddr = paddr: identity-mapped
    ph[24..32].copy_from_slice(&paddr.to_le_bytes());
    ph[32..40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    ph[40..48].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    ph[48..56].copy_from_slice(&PAGE.to_le_bytes());
    out.extend_from_slice(&ph);
    out[0x20..0x28].copy_from_slice(&new_phoff.to_le_bytes());
    out[0x38..0x3a].copy_from_slice(&((phnum + 1) as u16).to_le_bytes());
    out[desc + pvh::PADDR_OFFSET..desc + pvh::SIZE_OFFSET].copy_from_slice(&paddr.to_le_bytes());
    out[desc + pvh::SIZE_OFFSET..desc + pvh::DESCRIPTOR_LEN].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    Ok(out)
}

/// Writes an `xl` domain configuration that boots `image` as a PVH guest;
/// `memory_limit` is the sum of its apps' limits.
fn write_xl_config(path: &Path, name: &str, image: &Path, memory_limit: u64, args: &[String]) -> Result<(), Error> {
    let image = std::path::absolute(image).map_err(|source| Error::Write { path: image.to_path_buf(), source })?;
    let image = image.to_str().ok_or_else(|| Error::PathNotUtf8 { path: image.clone() })?;
    // The apps' memory limits plus room for the kernel, its heap overhead and the packages.
    let memory_mib = (memory_limit >> 20) + 64;
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = format!(
        "# Boots the Oasis image `{name}` as a Xen PVH guest: xl create {}\n\
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
        // A kernel whose descriptor is v1 cannot read a bundle: it is refused as old.
        let mut old = fake_kernel();
        old[0x10f] = b'1';
        let err = embed(&old, b"p").unwrap_err();
        assert_eq!(err, EmbedError::OldKernel);
        assert!(err.to_string().contains("older than this oasis"), "{err}");
    }

    /// `oasis image ARGS…` as `main` parses one app's part of the command line.
    fn app(args: &[&str]) -> ImageArgs {
        match <crate::Cli as clap::Parser>::try_parse_from(["oasis", "image"].iter().chain(args)) {
            Ok(crate::Cli { command: crate::Command::Image(a) }) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_image_options_are_given_once_by_any_app() {
        let apps = [app(&["a.oasis", "-e", "K=V"]), app(&["b.oasis", "-o", "x.xen", "--kernel", "k.elf"])];
        let options = ImageOptions::of(&apps).unwrap();
        assert_eq!(options, ImageOptions { output: "x.xen".into(), kernel: Some("k.elf".into()), xen_config: None });
        let twice = [app(&["a.oasis", "-o", "x.xen"]), app(&["b.oasis", "-o", "y.xen"])];
        let err = ImageOptions::of(&twice).unwrap_err();
        assert!(matches!(err, Error::GivenTwice { flag: "-o", times: 2 }), "{err:?}");
        assert!(err.to_string().starts_with("-o is given 2 times"), "{err}");
        let none = [app(&["a.oasis"]), app(&["b.oasis"])];
        let err = ImageOptions::of(&none).unwrap_err();
        assert!(matches!(err, Error::NoOutput { after_args: false }), "{err:?}");
        assert_eq!(err.to_string(), "no -o IMAGE: say where to write the image");
        let after_args = [app(&["a.oasis", "--", "-o", "x.xen"])];
        let err = ImageOptions::of(&after_args).unwrap_err();
        assert!(matches!(err, Error::NoOutput { after_args: true }), "{err:?}");
        assert!(err.to_string().contains("argument of the app"), "{err}");
    }

    #[test]
    fn settings_are_checked_like_oasis_run_checks_them() {
        let s = settings(&app(&["a.oasis", "-e", "K=a=b", "--memory", "32MiB", "--deny", "clock", "--", "x"])).unwrap();
        assert_eq!(
            s,
            Settings {
                args: vec!["x".into()],
                env: vec![("K".into(), "a=b".into())],
                memory_bytes: Some(32 << 20),
                cpu_ms_per_call: None,
                deny: vec!["clock".into()],
            }
        );
        let err = |args: &[&str]| settings(&app(args)).unwrap_err();
        assert!(matches!(err(&["a.oasis", "-e", "=v"]), Error::Option(OptionError::Env(kv)) if kv == "=v"));
        assert!(matches!(err(&["a.oasis", "--memory", "lots"]), Error::Option(OptionError::Memory(_))));
        assert!(err(&["a.oasis", "--memory", "lots"]).to_string().starts_with("--memory: "));
        let small = err(&["a.oasis", "--memory", "1KiB"]);
        assert!(matches!(small, Error::Setting(SettingError::Limit(LimitError::MemoryRange(_)))), "{small:?}");
        assert!(small.to_string().contains("out of range"), "{small}");
        let slow = err(&["a.oasis", "--cpu-ms-per-call", "9999999"]);
        assert!(matches!(slow, Error::Setting(SettingError::Limit(LimitError::CpuRange(_)))), "{slow:?}");
        let deny = err(&["a.oasis", "--deny", "disk"]);
        assert!(matches!(&deny, Error::Option(OptionError::UnknownCapability(k)) if k == "disk"), "{deny:?}");
        assert!(deny.to_string().starts_with("--deny disk: unknown"), "{deny}");
    }

    #[test]
    fn errors_about_one_app_of_several_name_it_once() {
        let a = app(&["a.oasis", "--deny", "disk"]);
        let err = settings(&a).unwrap_err().in_app(&a);
        assert!(err.to_string().starts_with("a.oasis: --deny disk: unknown capability"), "{err}");
        // Errors that name the package's file already are not named twice.
        let missing = app(&["/nonexistent/b.oasis"]);
        let err = Error::from(read_input(&missing.package).unwrap_err()).in_app(&missing);
        assert_eq!(err.to_string(), "/nonexistent/b.oasis: no such file");
    }

    #[test]
    fn two_of_one_app_get_names_of_their_own() {
        let prepared = |name: &str| Prepared {
            name: name.to_string(),
            version: "1".into(),
            settings: Settings::default(),
            package: Vec::new(),
            code_note: "",
            memory_bytes: 0,
        };
        let mut apps = [prepared("hello"), prepared("clock"), prepared("hello"), prepared("hello")];
        crate::apps::name_uniquely(apps.iter_mut().map(|p| &mut p.name));
        let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["hello", "clock", "hello-2", "hello-3"]);
    }
}
