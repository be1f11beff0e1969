use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc1: Dense(784 -> 64),
        fc2: Dense(128 -> 10),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        let h = relu(fc1(x));
        fc2(h)
    }
}

fn main() -> nanograd::Result<()> {
    // no secondary errors: the stub has quantize_int8 and the quantized model's methods
    let model = Mlp::<f32>::new(&mut nanograd::rand::rng());
    let q: MlpInt8 = model.quantize_int8()?;
    let _out: Vec<[f32; 10]> = q.forward(&[[0.0; 784]])?;
    let _bytes: Vec<u8> = q.to_safetensors_bytes()?;
    let _again = MlpInt8::load_safetensors_bytes(&_bytes)?;
    let _names: &[&str] = q.int8_weights();
    Ok(())
}
