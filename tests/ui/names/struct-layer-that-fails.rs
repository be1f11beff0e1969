// checks: a model whose own model! fails is silent where it is used as a layer
use nanograd::prelude::*;

model! {
    pub struct Block {
        a: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        relu(a(x)) + 1.0 + y
    }
}

model! {
    pub struct Net {
        blk: Block,
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        blk(x)
    }
}

fn main() {
    let net = Net::<f32>::new(&mut nanograd::rand::rng());
    let _: Vec<[f32; 4]> = net.forward(&[[0.0; 4]]).unwrap();
}
