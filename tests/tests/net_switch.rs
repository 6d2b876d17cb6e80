//! `--net switch`: two tenants of one host, each with its own smoltcp stack and
//! IP address on the in-process switch, talk to each other with no OS sockets.
//! Driven through host-core's API (one process, two tenants), the way a
//! multi-tenant host does.

mod common;
use common::artifact;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host_core::caps::Grants;
use host_core::net::smol::{SmolNetwork, StackConfig};
use host_core::net::{ConnectPattern, NetGrants, Network, Publish};
use host_core::platform::{DriverError, Output, Platform};
use host_core::process::StdPlatform;
use host_core::process::switch::Switch;
use host_core::tenant::{Runtime, Step, TenantConfig};
use host_core::{EngineProfile, Exit};

/// Std drivers that keep each tenant's output for the test to read.
struct Capture {
    inner: StdPlatform,
    out: Mutex<Vec<(String, String)>>,
}

impl Platform for Capture {
    fn monotonic_ns(&self) -> u64 {
        self.inner.monotonic_ns()
    }
    fn wall_ns(&self) -> u64 {
        self.inner.wall_ns()
    }
    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        self.inner.fill_entropy(buf)
    }
    fn write_output(&self, tenant: &str, _o: Output<'_>, bytes: &[u8]) -> Result<(), DriverError> {
        self.out.lock().unwrap().push((tenant.to_string(), String::from_utf8_lossy(bytes).into_owned()));
        Ok(())
    }
    fn sleep_until(&self, deadline_ns: u64) {
        self.inner.sleep_until(deadline_ns)
    }
}

#[test]
fn two_tenants_talk_over_the_in_process_switch() {
    let platform = Arc::new(Capture { inner: StdPlatform::new(), out: Mutex::new(Vec::new()) });
    let runtime = Runtime::new(EngineProfile::native(), &Default::default(), platform.clone(), 1).unwrap();
    let sw = Switch::new();
    let stack = |last: u8| -> Arc<dyn Network> {
        let config = StackConfig { mac: [2, 0, 0, 0, 0, last], ip: [10, 1, 0, last].into(), prefix: 24, gateway: None };
        Arc::new(SmolNetwork::new(sw.port(), config, platform.clone()))
    };

    let echo_app = runtime.load(&std::fs::read(artifact("echo.oasis")).unwrap(), "echo").unwrap();
    let client_app = runtime.load(&std::fs::read(artifact("net-client.oasis")).unwrap(), "net-client").unwrap();
    let echo_net = stack(1);
    let client_net = stack(2);
    let echo_cfg = TenantConfig {
        name: "echo".into(),
        net: NetGrants { publish: vec![Publish::parse("7:7").unwrap()], connect: vec![] },
        network: Some(echo_net.clone()),
        allowed: Grants::new(["console", "clock", "net"]),
        ..TenantConfig::for_app(&echo_app)
    };
    let client_cfg = TenantConfig {
        name: "client".into(),
        args: vec!["10.1.0.1:7".into(), "across the switch".into()],
        net: NetGrants { publish: vec![], connect: vec![ConnectPattern::parse("10.1.0.1:7").unwrap()] },
        network: Some(client_net.clone()),
        allowed: Grants::new(["console", "clock", "net"]),
        ..TenantConfig::for_app(&client_app)
    };
    let mut tenants = [
        (runtime.instantiate(&echo_app, &echo_cfg).unwrap(), echo_net),
        (runtime.instantiate(&client_app, &client_cfg).unwrap(), client_net),
    ];
    // A small multi-tenant loop: poll each network without blocking, deliver
    // readiness, and run each tenant when it has events or a deadline is due.
    let mut steps: Vec<Step> = tenants.iter_mut().map(|(t, _)| t.init()).collect();
    let start = Instant::now();
    let mut ready = Vec::new();
    while tenants[1].0.exit().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out: {:?}", platform.out.lock().unwrap());
        for (i, (tenant, net)) in tenants.iter_mut().enumerate() {
            ready.clear();
            net.wait(Some(0), &mut ready);
            let woke = tenant.deliver(&ready);
            let due = matches!(steps[i], Step::Deadline(d) if d <= platform.monotonic_ns());
            if woke || due {
                steps[i] = tenant.poll(platform.monotonic_ns());
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let out = platform.out.lock().unwrap().clone();
    assert_eq!(tenants[1].0.exit(), Some(&Exit::Status(0)), "client output: {out:?}");
    let client_said: String = out.iter().filter(|(t, _)| t == "client").map(|(_, s)| s.as_str()).collect();
    assert!(client_said.contains("across the switch"), "{out:?}");
    assert!(tenants[0].0.exit().is_none(), "the echo server keeps serving");
}
