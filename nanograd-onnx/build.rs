//! Generates ONNX's protobuf types from `proto/onnx.proto` (ONNX's own file, unchanged):
//! protox parses it in Rust, prost-build writes the structs, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["proto/onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
