#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backstage_kubernetes_auth_native_fuzz::sts_xml(data));
