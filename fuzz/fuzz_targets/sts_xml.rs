#![no_main]
use std::sync::OnceLock;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| backstage_kubernetes_auth_native_fuzz::sts_xml(runtime(), data)
);
