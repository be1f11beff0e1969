//! Pooling layers, with no parameters: [`MaxPool2d`] and [`AvgPool2d`] (PyTorch's
//! `nn.MaxPool2d` and `nn.AvgPool2d`, no padding). Each output element is the maximum
//! (mean) of a `kernel`×`kernel` window moved by `stride`.

use super::{positive, window_out};
use crate::{Float, Module, Param, Result};

macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $op:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            kernel: usize,
            stride: usize,
            training: bool,
        }

        impl $name {
            /// A pooling window of side `kernel` moved by `stride` (PyTorch's default stride
            /// is the kernel size). Errors if either is zero.
            pub fn new(kernel: usize, stride: usize) -> Result<Self> {
                positive($op, "kernel", kernel)?;
                positive($op, "stride", stride)?;
                Ok($name { kernel, stride, training: true })
            }

            /// The side of the square window.
            pub fn kernel_size(&self) -> usize {
                self.kernel
            }

            /// The step between windows, in both directions.
            pub fn stride(&self) -> usize {
                self.stride
            }

            /// The output height and width for an `h`×`w` input: `(h − kernel) / stride + 1`
            /// and the same for `w`. Errors when the window does not fit.
            pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
                Ok((
                    window_out($op, h, self.kernel, self.stride, 0)?,
                    window_out($op, w, self.kernel, self.stride, 0)?,
                ))
            }

            /// Sets training mode (no effect on pooling; kept for uniformity).
            pub fn set_training_mode(&mut self, training: bool) {
                self.training = training;
            }

            /// Whether the layer is in training mode.
            pub fn is_training(&self) -> bool {
                self.training
            }
        }

        impl<T: Float> Module<T> for $name {
            fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}
            fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<T>)) {}
            fn set_training_mode(&mut self, training: bool) {
                self.training = training;
            }
            fn is_training(&self) -> bool {
                self.training
            }
        }
    };
}

pool_layer!(
    /// 2-D max pooling: each output is the largest element of its window.
    MaxPool2d,
    "MaxPool2d"
);
pool_layer!(
    /// 2-D average pooling: each output is the mean of its window.
    AvgPool2d,
    "AvgPool2d"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_errors() {
        let p = MaxPool2d::new(2, 2).unwrap();
        // (28 - 2) / 2 + 1 = 14; (7 - 2) / 2 + 1 = 3 (the last row is dropped, as in PyTorch)
        assert_eq!(p.output_hw(28, 7).unwrap(), (14, 3));
        assert_eq!((p.kernel_size(), p.stride()), (2, 2));
        let a = AvgPool2d::new(3, 1).unwrap();
        assert_eq!(a.output_hw(5, 3).unwrap(), (3, 1));
        let err = a.output_hw(2, 5).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid argument to AvgPool2d: kernel 3"),
            "{err}"
        );
        let err = MaxPool2d::new(2, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to MaxPool2d: stride must be positive, got 0"
        );
        assert!(AvgPool2d::new(0, 1).is_err());
    }

    #[test]
    fn module_without_parameters() {
        let mut p = MaxPool2d::new(2, 2).unwrap();
        assert_eq!(Module::<f32>::num_parameters(&p), 0);
        assert!(p.is_training());
        Module::<f64>::set_eval_mode(&mut p);
        assert!(!p.is_training());
        assert_eq!(
            Module::<f64>::summary(&p),
            "parameter  shape  count\ntotal parameters: 0"
        );
    }
}
