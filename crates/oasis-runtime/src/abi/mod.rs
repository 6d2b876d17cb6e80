//! The host side of the guest ABI (`guest-api/ABI.md`): one [`Linker`] with the
//! `oasis_v1` imports and the WASI preview-1 subset, shared by every host.
//!
//! This layer is marshalling only: it reads a call's arguments from guest
//! memory, hands them to the capability kind the import belongs to
//! ([`crate::caps`]), and writes the results back. The host functions are
//! generic over the store's data, which they reach through [`TenantView`]: a
//! projection to the tenant's context and its instance's memory.
//!
//! Host functions never trap on bad guest input: a bad pointer is `FAULT`, a bad
//! handle `BAD_HANDLE`. Guest memory is checked before anything else happens
//! (a call that faults has done nothing), then the kind checks its grant and
//! its handle. The only ways out of a call are a status, `proc_exit`, or a
//! limit the host enforces.

pub mod memory;
mod net;
mod oasis;
pub mod wasi;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use oasis_abi::Status;
use wasmtime::{Caller, Engine, FuncType, IntoFunc, Linker, Module, Val};

use crate::context::{TenantCtx, TenantView};
use memory::Fault;

/// Builds a linker with every function an Oasis module may import.
pub fn linker<T: TenantView>(engine: &Engine) -> wasmtime::Result<Linker<T>> {
    build(engine, None)
}

/// Builds a linker with just the functions `module` imports.
///
/// Each definition registers a function type with the engine; most apps import
/// a handful of the 51 functions, and a cold `oasis run` pays for every one.
pub fn linker_for<T: TenantView>(engine: &Engine, module: &Module) -> wasmtime::Result<Linker<T>> {
    let wanted = module.imports().map(|i| (i.module().to_string(), i.name().to_string())).collect();
    build(engine, Some(wanted))
}

fn build<T: TenantView>(engine: &Engine, wanted: Option<Vec<(String, String)>>) -> wasmtime::Result<Linker<T>> {
    let mut linker = Linker::new(engine);
    let mut d = Definer { linker: &mut linker, wanted };
    oasis::add_to_linker(&mut d)?;
    net::add_to_linker(&mut d)?;
    wasi::add_to_linker(&mut d)?;
    Ok(linker)
}

/// Adds host functions to a linker, skipping those not wanted.
pub(crate) struct Definer<'a, T> {
    linker: &'a mut Linker<T>,
    wanted: Option<Vec<(String, String)>>,
}

impl<T: TenantView> Definer<'_, T> {
    fn wants(&self, module: &str, name: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| w.iter().any(|(m, n)| m == module && n == name))
    }

    /// `Linker::func_wrap`, if wanted.
    pub(crate) fn wrap<Params, Args>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<T, Params, Args>,
    ) -> wasmtime::Result<()> {
        if self.wants(module, name) {
            self.linker.func_wrap(module, name, func)?;
        }
        Ok(())
    }

    /// `Linker::func_new`, if wanted.
    pub(crate) fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: impl FnOnce(&Engine) -> FuncType,
        func: impl Fn(wasmtime::Caller<'_, T>, &[Val], &mut [Val]) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> wasmtime::Result<()> {
        if self.wants(module, name) {
            let ty = ty(self.linker.engine());
            self.linker.func_new(module, name, ty, func)?;
        }
        Ok(())
    }
}

/// Makes one method of [`Definer`] per `oasis_v1` import, named after it, that
/// defines it with the table's type (`oasis_abi::for_each_import!`): the host
/// function's parameter and result types come from the table, so a host
/// closure of any other type does not compile.
macro_rules! define_oasis_imports {
    (module = $module:literal;
     $( $(#[$meta:meta])* $konst:ident: fn $name:ident($($param:ident: $ty:ident),*) -> $ret:ident; )*) => {
        impl<T: TenantView> Definer<'_, T> {
            $(
                #[doc = concat!("Defines `", $module, ".", stringify!($name), "`, if wanted, with the table's type.")]
                pub(crate) fn $name(
                    &mut self,
                    func: impl Fn(Caller<'_, T>, $($ty),*) -> $ret + Send + Sync + 'static,
                ) -> wasmtime::Result<()> {
                    self.wrap($module, oasis_abi::import::$konst, func)
                }
            )*
        }
    };
}

oasis_abi::for_each_import!(define_oasis_imports);

impl From<Fault> for Status {
    fn from(_: Fault) -> Status {
        Status::Fault
    }
}

/// Runs `f` with the guest's memory and the tenant's context, mapping the
/// result to a raw status.
pub(crate) fn with_ctx<T: TenantView>(
    caller: &mut Caller<'_, T>,
    f: impl FnOnce(&mut [u8], &mut TenantCtx) -> Result<(), Status>,
) -> i32 {
    let Some(mem) = caller.data().memory() else {
        // No exported memory: the loader refuses such modules, so this is unreachable
        // in practice; answer rather than trap all the same.
        return Status::Fault as i32;
    };
    let (bytes, data) = mem.data_and_store_mut(caller);
    match f(bytes, data.ctx()) {
        Ok(()) => Status::Ok as i32,
        Err(s) => s as i32,
    }
}

/// Asked for by `proc_exit`: ends the current call into the guest with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("app exited with status {0}")]
pub struct ExitRequest(pub i32);

#[cfg(test)]
mod tests;
