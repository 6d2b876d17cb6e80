//! The apps an image holds: its payload read ([`Payload`]: a bundle of apps
//! with the operator's settings, or one plain package), and each app's
//! tenant configuration.
//!
//! The kernel command line's `-- ARGS` are the app's arguments when the
//! image holds one app, replacing those `oasis image` stored (so that an xl
//! `cmdline` can change them without a new image). An image of several apps
//! takes each one's arguments from its bundle only: a command line could not
//! say whose they are, so one with `--` is refused.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use oasis_format::Grants;
use oasis_format::image::Payload;
use oasis_format::image::bundle::Settings;
use oasis_runtime::{LoadedApp, TenantConfig};

/// One app of the image, not loaded yet.
pub struct Entry {
    /// Its name from the bundle; `None` for a plain package (its manifest's name).
    pub name: Option<String>,
    /// The operator's settings (none for a plain package).
    pub settings: Settings,
    /// Its package.
    pub package: &'static [u8],
}

/// The apps in `payload`, with the kernel command line's `args` (given when
/// it has a `--`) applied as the module docs say.
pub fn entries(payload: &'static [u8], args: Option<Vec<String>>) -> Result<Vec<Entry>, String> {
    let mut entries = match Payload::parse(payload).map_err(|e| format!("the image: {e}"))? {
        Payload::Package(package) => Vec::from([Entry { name: None, settings: Settings::default(), package }]),
        Payload::Bundle(bundle) => bundle
            .tenants
            .into_iter()
            .map(|t| Entry { name: Some(t.name.to_string()), settings: t.settings, package: t.package })
            .collect(),
    };
    match (&mut entries[..], args) {
        (_, None) => {}
        ([one], Some(args)) => one.settings.args = args,
        (several, Some(_)) => {
            return Err(format!(
                "the image holds {} apps, so the kernel command line cannot give arguments after `--`: give each app its own with `oasis image A.oasis -- ARGS :: B.oasis -- ARGS`",
                several.len()
            ));
        }
    }
    Ok(entries)
}

/// How `entry`, loaded as `app`, runs: the kernel's grants (console, clocks,
/// entropy: it has no network) less what the operator denied, the limits
/// with the operator's overrides, its arguments and environment.
pub fn config(entry: &Entry, app: &LoadedApp) -> TenantConfig {
    let basic = Grants::basic();
    let settings = &entry.settings;
    TenantConfig {
        name: entry.name.clone().unwrap_or_else(|| app.manifest.name.clone()),
        args: settings.args.clone(),
        env: settings.env.clone(),
        allowed: Grants::new(basic.kinds().filter(|k| !settings.denies(k))),
        limits: settings.limits(app.manifest.limits),
        ..TenantConfig::for_app(app)
    }
}
