//! [`Conv2d`]: a 2-D convolution layer over `[C_in, H, W]` inputs (the seed's
//! `make-conv2d-layer`, PyTorch's `nn.Conv2d` with square kernels).

use rand::Rng;

use super::{positive, window_out};
use crate::{init, Float, Module, Param, Result};

/// 2-D convolution: `weight` of shape `[c_out, c_in, k, k]`, He-normal initialised (seed:
/// N(0, 2 / (c_in·k·k))), a zero `bias` of shape `[c_out]` unless built
/// [`without_bias`](Conv2d::without_bias), and a stride and zero padding.
#[derive(Clone, Debug)]
pub struct Conv2d<T: Float> {
    /// `[out_channels, in_channels, kernel, kernel]`.
    pub weight: Param<T>,
    /// `[out_channels]`; empty (`[0]`) in a layer without a bias.
    pub bias: Param<T>,
    has_bias: bool,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    training: bool,
}

impl<T: Float> Conv2d<T> {
    /// A convolution from `in_channels` to `out_channels` with a `kernel`×`kernel` window.
    /// Errors if a channel count, the kernel or the stride is zero.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        positive("Conv2d", "in_channels", in_channels)?;
        positive("Conv2d", "out_channels", out_channels)?;
        positive("Conv2d", "kernel", kernel)?;
        positive("Conv2d", "stride", stride)?;
        let mut weight = Param::zeros(&[out_channels, in_channels, kernel, kernel])?;
        let (fan_in, _) = init::fans(weight.shape())?;
        init::kaiming_normal(fan_in, rng, weight.value_mut())?;
        Ok(Conv2d {
            weight,
            bias: Param::zeros(&[out_channels])?,
            has_bias: true,
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            training: true,
        })
    }

    /// A convolution with no bias (PyTorch's `bias=False`, usual before batch norm): it has
    /// one parameter, `weight`.
    pub fn without_bias(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let mut layer = Conv2d::new(in_channels, out_channels, kernel, stride, padding, rng)?;
        layer.bias = Param::zeros(&[0])?;
        layer.has_bias = false;
        Ok(layer)
    }

    /// Whether the layer adds a bias.
    pub fn has_bias(&self) -> bool {
        self.has_bias
    }

    /// The number of input channels (the seed's `layer-input-size`).
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// The number of output channels (the seed's `layer-output-size`).
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// The side of the square kernel.
    pub fn kernel_size(&self) -> usize {
        self.kernel
    }

    /// The stride, in both directions.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The zero padding added on every side.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// The output height and width for an `h`×`w` input:
    /// `(h + 2·padding − kernel) / stride + 1`, and the same for `w`. Errors when the kernel
    /// does not fit in the padded input.
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        Ok((
            window_out("Conv2d", h, self.kernel, self.stride, self.padding)?,
            window_out("Conv2d", w, self.kernel, self.stride, self.padding)?,
        ))
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        if self.has_bias {
            f("bias", &self.bias);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("weight", &mut self.weight);
        if self.has_bias {
            f("bias", &mut self.bias);
        }
    }
    fn set_training_mode(&mut self, training: bool) {
        self.training = training;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn shapes_init_and_geometry() {
        let mut rng = StdRng::seed_from_u64(0);
        let c = Conv2d::<f64>::new(8, 16, 3, 2, 1, &mut rng).unwrap();
        assert_eq!(c.weight.shape(), &[16, 8, 3, 3]);
        assert_eq!(c.bias.shape(), &[16]);
        assert_eq!(
            (
                c.in_channels(),
                c.out_channels(),
                c.kernel_size(),
                c.stride(),
                c.padding()
            ),
            (8, 16, 3, 2, 1)
        );
        // He: variance 2 / (8*3*3) = 1/36; 1152 draws give a sample variance near it
        let w = c.weight.value();
        let var = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
        assert!((var - 1.0 / 36.0).abs() < 0.1 / 36.0, "variance {var}");
        // 28x28, k 3, s 2, p 1: (28 + 2 - 3) / 2 + 1 = 14
        assert_eq!(c.output_hw(28, 28).unwrap(), (14, 14));
        // 1x5 input: (1 + 2 - 3) / 2 + 1 = 1, (5 + 2 - 3) / 2 + 1 = 3
        assert_eq!(c.output_hw(1, 5).unwrap(), (1, 3));
        assert_eq!(c.num_parameters(), 16 * 8 * 9 + 16);
    }

    #[test]
    fn impossible_geometry_is_an_error() {
        let mut rng = StdRng::seed_from_u64(0);
        let err = Conv2d::<f32>::new(1, 4, 3, 0, 0, &mut rng).unwrap_err();
        assert!(err.to_string().contains("stride must be positive"), "{err}");
        assert!(Conv2d::<f32>::new(0, 4, 3, 1, 0, &mut rng).is_err());
        assert!(Conv2d::<f32>::new(1, 4, 0, 1, 0, &mut rng).is_err());
        let c = Conv2d::<f32>::new(1, 4, 5, 1, 0, &mut rng).unwrap();
        let err = c.output_hw(4, 8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to Conv2d: kernel 5 is larger than the padded input 4 (input 4, padding 0)"
        );
    }

    #[test]
    fn without_bias_has_only_a_weight() {
        let mut rng = StdRng::seed_from_u64(3);
        let layer = Conv2d::<f64>::without_bias(2, 3, 3, 1, 1, &mut rng).unwrap();
        assert!(!layer.has_bias());
        let mut names = Vec::new();
        layer.visit_params(&mut |n, _| names.push(n.to_string()));
        assert_eq!(names, ["weight"]);
        assert_eq!(layer.num_parameters(), layer.weight.len());
        assert!(Conv2d::<f64>::new(2, 3, 3, 1, 1, &mut rng)
            .unwrap()
            .has_bias());
    }
}
