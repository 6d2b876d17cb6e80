//! What `oasis run` and `oasis image` share: several apps on one command
//! line, separated by [`APP_SEPARATOR`], each parsed as that command's
//! one-app command line; and the per-app options both take (`-e`,
//! `--memory`, `--deny`), parsed and checked the same way, with the same
//! messages, so that an image refuses what a run refuses.

use std::ffi::OsString;

use clap::{Args, Parser};

use oasis_abi::kind;
use oasis_format::limits::{self, LimitError};

use crate::{Cli, Command};

/// The argument that separates the apps of one `oasis run` or `oasis image`.
pub const APP_SEPARATOR: &str = "::";

/// A command that takes several apps separated by [`APP_SEPARATOR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupCommand {
    /// `oasis run`: the apps run as tenants of one process.
    Run,
    /// `oasis image`: the apps become tenants of one kernel.
    Image,
}

impl GroupCommand {
    /// Every such command, for finding one by its name.
    const ALL: [GroupCommand; 2] = [GroupCommand::Run, GroupCommand::Image];

    /// The subcommand's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GroupCommand::Run => "run",
            GroupCommand::Image => "image",
        }
    }

    /// How the command is written with several apps, for errors about the separator.
    pub fn usage(self) -> &'static str {
        match self {
            GroupCommand::Run => "oasis run APP [OPTIONS] [-- ARGS] :: APP [OPTIONS] [-- ARGS]…",
            GroupCommand::Image => "oasis image -o IMAGE PKG [OPTIONS] [-- ARGS] :: PKG [OPTIONS] [-- ARGS]…",
        }
    }
}

/// A separator with no app on one side of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeparatorError {
    /// `::` before any app.
    #[error("`{APP_SEPARATOR}` with no app before it: {}", .0.usage())]
    NothingBefore(GroupCommand),
    /// `::` with no app after it.
    #[error("`{APP_SEPARATOR}` must be followed by another app: {}", .0.usage())]
    NothingAfter(GroupCommand),
}

/// A command line of several apps, split at each [`APP_SEPARATOR`].
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// The command the apps are given to.
    pub command: GroupCommand,
    /// Each app's arguments, in the order given.
    pub segments: Vec<&'a [OsString]>,
}

/// Splits `oasis run A… :: B… :: C…` (or `oasis image …`) into the command
/// and the arguments of each app; `None` for any other command line, which
/// clap parses whole.
///
/// A standalone `::` always separates apps, after `--` too: that is what lets
/// every app but the last have arguments of its own.
pub fn split_apps(args: &[OsString]) -> Result<Option<Split<'_>>, SeparatorError> {
    let command = args.get(1).and_then(|c| GroupCommand::ALL.into_iter().find(|g| c == g.name()));
    let Some(command) = command.filter(|_| args[2..].iter().any(|a| a == APP_SEPARATOR)) else {
        return Ok(None);
    };
    let segments: Vec<&[OsString]> = args[2..].split(|a| a == APP_SEPARATOR).collect();
    if segments[0].is_empty() {
        return Err(SeparatorError::NothingBefore(command));
    }
    if segments[1..].iter().any(|s| s.is_empty()) {
        return Err(SeparatorError::NothingAfter(command));
    }
    Ok(Some(Split { command, segments }))
}

/// Parses each app's arguments exactly as a one-app command line of the same
/// subcommand (`program_and_command`, e.g. `oasis image`), taking the app's
/// arguments out of the parsed command with `pick`; clap's error for the
/// first that does not parse (or the help text it was asked for).
pub(crate) fn parse_each_app<T>(
    program_and_command: &[OsString],
    segments: &[&[OsString]],
    pick: fn(Command) -> Option<T>,
) -> Result<Vec<T>, clap::Error> {
    segments
        .iter()
        .map(|segment| {
            Cli::try_parse_from(program_and_command.iter().chain(segment.iter()))
                .map(|cli| pick(cli.command).expect("the subcommand is the one the segments were split for"))
        })
        .collect()
}

/// An app's option that neither `oasis run` nor `oasis image` takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// `-e` that is not `KEY=VALUE`.
    #[error("-e `{0}`: expected KEY=VALUE with a non-empty KEY")]
    Env(String),
    /// `--memory` that is not a size.
    #[error("--memory: {0}")]
    Memory(#[source] LimitError),
    /// `--deny` of a capability kind there is not.
    #[error("--deny {0}: unknown capability (known: {known})", known = kind::ALL.join(", "))]
    UnknownCapability(String),
}

/// The options of each app of `oasis run` and `oasis image`: its
/// environment, limits and withheld capabilities.
#[derive(Debug, Args)]
pub struct AppOptions {
    /// Set an environment variable for the app (repeatable).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Memory limit, e.g. 64MiB (default: the manifest's, else 256MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU budget of each call into the app in ms; 0 = none (default: the manifest's, else 10000).
    #[arg(long, value_name = "N")]
    pub cpu_ms_per_call: Option<u64>,
    /// Withhold a capability kind the manifest asks for (repeatable).
    #[arg(long, value_name = "KIND")]
    pub deny: Vec<String>,
}

/// What an app may reach on the network, as `oasis run` and `oasis deploy`
/// take it.
#[derive(Debug, Args)]
pub struct NetOptions {
    /// Publish an app port on the host: [ADDR:]HOST_PORT:APP_PORT[/udp] (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Let the app connect to HOST:PORT (HOST: IP, name or *; PORT: number or *) (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    pub allow_connect: Vec<String>,
}

impl NetOptions {
    /// The grants these options give.
    pub fn parse(&self) -> Result<oasis_format::net::NetGrants, oasis_format::net::NetGrantsError> {
        oasis_format::net::NetGrants::parse(&self.publish, &self.allow_connect)
    }
}

/// [`AppOptions`], checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// `-e`, in order.
    pub env: Vec<(String, String)>,
    /// `--memory` in bytes.
    pub memory: Option<u64>,
    /// `--cpu-ms-per-call`.
    pub cpu_ms_per_call: Option<u64>,
    /// `--deny`, every one a capability kind there is.
    pub deny: Vec<String>,
}

impl AppOptions {
    /// Checks the options, as both commands check them.
    pub fn check(&self) -> Result<AppSettings, OptionError> {
        let env = self.env.iter().map(|kv| parse_env(kv)).collect::<Result<Vec<_>, _>>()?;
        let memory = self.memory.as_deref().map(parse_memory).transpose()?;
        check_deny(&self.deny)?;
        Ok(AppSettings { env, memory, cpu_ms_per_call: self.cpu_ms_per_call, deny: self.deny.clone() })
    }
}

/// Parses `-e K=V`.
pub fn parse_env(kv: &str) -> Result<(String, String), OptionError> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => Ok((k.to_string(), v.to_string())),
        _ => Err(OptionError::Env(kv.to_string())),
    }
}

/// Parses a `--memory` value.
pub fn parse_memory(text: &str) -> Result<u64, OptionError> {
    limits::parse_size(text).map_err(OptionError::Memory)
}

/// Checks that every `--deny` names a capability kind there is.
pub fn check_deny(kinds: &[String]) -> Result<(), OptionError> {
    match kinds.iter().find(|k| !kind::ALL.contains(&k.as_str())) {
        Some(unknown) => Err(OptionError::UnknownCapability(unknown.clone())),
        None => Ok(()),
    }
}

/// Gives tenants that share a name names of their own: the second `hello`
/// becomes `hello-2`, the third `hello-3`, and so on, so that their output
/// (and `--exit-with`) can tell them apart. `oasis run A :: B` and
/// `oasis image A :: B` name their apps alike.
pub fn name_uniquely<'a>(names: impl IntoIterator<Item = &'a mut String>) {
    let mut taken = std::collections::HashSet::new();
    for name in names {
        let base = name.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            *name = format!("{base}-{n}");
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(command: &str, args: &[&str]) -> Vec<OsString> {
        ["oasis", command].iter().chain(args).map(OsString::from).collect()
    }

    #[test]
    fn separators_need_an_app_on_each_side() {
        let run = |args: &[&str]| line("run", args);
        assert_eq!(split_apps(&run(&["::", "a.oasis"])), Err(SeparatorError::NothingBefore(GroupCommand::Run)));
        assert_eq!(split_apps(&run(&["a.oasis", "::"])), Err(SeparatorError::NothingAfter(GroupCommand::Run)));
        assert_eq!(
            split_apps(&run(&["a.oasis", "::", "::", "b.oasis"])),
            Err(SeparatorError::NothingAfter(GroupCommand::Run))
        );
        assert_eq!(split_apps(&run(&["a.oasis", "--", "x"])), Ok(None));
        assert_eq!(split_apps(&line("package", &["::"])), Ok(None), "only `run` and `image` have apps to separate");
        assert_eq!(
            SeparatorError::NothingBefore(GroupCommand::Run).to_string(),
            "`::` with no app before it: oasis run APP [OPTIONS] [-- ARGS] :: APP [OPTIONS] [-- ARGS]…"
        );
        let image = split_apps(&line("image", &["-o", "x.xen", "a.oasis", "::"])).unwrap_err();
        assert_eq!(
            image.to_string(),
            "`::` must be followed by another app: oasis image -o IMAGE PKG [OPTIONS] [-- ARGS] :: PKG [OPTIONS] [-- ARGS]…"
        );
    }

    #[test]
    fn each_app_is_parsed_as_a_command_line_of_its_own() {
        let run = |c: Command| match c {
            Command::Run(a) => Some(a),
            _ => None,
        };
        let args = line("run", &["a.oasis", "-e", "K=1", "--", "x", "::", "b.oasis", "--memory", "8MiB"]);
        let Split { command, segments } = split_apps(&args).unwrap().expect("two apps");
        assert_eq!(command, GroupCommand::Run);
        let apps = parse_each_app(&args[..2], &segments, run).unwrap();
        assert_eq!(apps.iter().map(|a| a.app.to_str().unwrap()).collect::<Vec<_>>(), ["a.oasis", "b.oasis"]);
        assert_eq!(
            (apps[0].args.as_slice(), apps[1].options.memory.as_deref()),
            (&["x".to_string()][..], Some("8MiB"))
        );

        let args = line("run", &["a.oasis", "::", "b.oasis", "--teleport"]);
        let Split { segments, .. } = split_apps(&args).unwrap().unwrap();
        let err = parse_each_app(&args[..2], &segments, run).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);

        // `image` takes the same separator, with its own options per app.
        let args = line("image", &["a.oasis", "-o", "x.xen", "::", "b.oasis", "--deny", "clock", "--", "y"]);
        let Split { command, segments } = split_apps(&args).unwrap().unwrap();
        assert_eq!(command, GroupCommand::Image);
        let apps = parse_each_app(&args[..2], &segments, |c| match c {
            Command::Image(a) => Some(a),
            _ => None,
        })
        .unwrap();
        assert_eq!((apps[0].output.as_deref(), apps[1].output.as_deref()), (Some("x.xen".as_ref()), None));
        assert_eq!(
            (apps[1].options.deny.as_slice(), apps[1].args.as_slice()),
            (&["clock".to_string()][..], &["y".into()][..])
        );
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(parse_env("K=a=b"), Ok(("K".into(), "a=b".into())));
        assert_eq!(parse_env("=oops"), Err(OptionError::Env("=oops".into())));
        assert_eq!(parse_env("K"), Err(OptionError::Env("K".into())));
        assert_eq!(parse_env("=oops").unwrap_err().to_string(), "-e `=oops`: expected KEY=VALUE with a non-empty KEY");
        assert_eq!(parse_memory("32MiB"), Ok(32 << 20));
        assert!(matches!(parse_memory("lots"), Err(OptionError::Memory(LimitError::BadSize(_)))));
        assert!(parse_memory("lots").unwrap_err().to_string().starts_with("--memory: "));
        assert_eq!(check_deny(&["clock".into()]), Ok(()));
        let err = check_deny(&["clock".into(), "teleporter".into()]).unwrap_err();
        assert_eq!(err, OptionError::UnknownCapability("teleporter".into()));
        assert!(err.to_string().starts_with("--deny teleporter: unknown capability (known: "), "{err}");
    }
}
