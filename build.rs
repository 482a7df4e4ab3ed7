fn main() {
    // napi-build sets the link arguments a Node addon needs; harmless for the plain-Rust core.
    napi_build::setup();
}
