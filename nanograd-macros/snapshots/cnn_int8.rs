#[derive(Clone, Debug)]
pub struct Cnn<T: ::nanograd::Float = f32> {
    pub conv1: ::nanograd::layers::Conv2d<T>,
    pub bn1: ::nanograd::layers::BatchNorm2d<T>,
    pub pool: ::nanograd::layers::MaxPool2d,
    pub fc: ::nanograd::layers::Dense<T>,
    __training: bool,
    __workspace: ::nanograd::Workspace<T>,
}
impl<T: ::nanograd::Float> Cnn<T> {
    ///A new model with freshly initialised parameters (Xavier for dense layers, He for convolutions), in training mode.
    #[allow(dead_code)]
    pub fn new(rng: &mut impl ::nanograd::rand::Rng) -> Self {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        Self {
            conv1: ::nanograd::layers::Conv2d::new(
                    1usize,
                    4usize,
                    3usize,
                    1usize,
                    1usize,
                    rng,
                )
                .expect("nanograd: model! validated the layer `conv1`"),
            bn1: {
                let mut __l = ::nanograd::layers::BatchNorm2d::new(4usize)
                    .expect("nanograd: model! validated the layer `bn1`");
                __l.set_eps(0.00001f64)
                    .expect("nanograd: model! validated the layer `bn1`");
                __l.set_momentum(0.1f64)
                    .expect("nanograd: model! validated the layer `bn1`");
                __l
            },
            pool: ::nanograd::layers::MaxPool2d::new(2usize, 2usize)
                .expect("nanograd: model! validated the layer `pool`"),
            fc: ::nanograd::layers::Dense::new(64usize, 3usize, rng)
                .expect("nanograd: model! validated the layer `fc`"),
            __training: true,
            __workspace: ::nanograd::Workspace::with_seed(rng.next_u64()),
        }
    }
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        x: &[[[[T; 8usize]; 8usize]; 1usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[T; 3usize]>> {
        let mut __out = ::nanograd::__private::Vec::with_capacity(x.len());
        __out.resize(x.len(), [T::zero(); 3usize]);
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.forward_into(x, &mut __out, __ws) },
        )?;
        Ok(__out)
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn forward_into(
        &self,
        x: &[[[[T; 8usize]; 8usize]; 1usize]],
        out: &mut [[T; 3usize]],
        ws: &mut ::nanograd::Workspace<T>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = x.len();
        let __x0: &[T] = x.as_flattened().as_flattened().as_flattened();
        let (__ws, __rng) = ws.split(__b * 1411usize + 4148usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__cols3, __ws) = __ws.split_at_mut(__b * 576usize + 4132usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__mean6, __ws) = __ws.split_at_mut(4usize);
        let (__invstd6, __ws) = __ws.split_at_mut(4usize);
        let (__rmean6, __ws) = __ws.split_at_mut(4usize);
        let (__rvar6, __ws) = __ws.split_at_mut(4usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__v12, __ws) = __ws.split_at_mut(__b * 3usize);
        let _ = __ws;
        ::nanograd::ops::conv2d(
            &::nanograd::ops::Conv2dGeom {
                c_in: 1usize,
                h: 8usize,
                w: 8usize,
                c_out: 4usize,
                kh: 3usize,
                kw: 3usize,
                stride: 1usize,
                padding: 1usize,
            },
            __x0,
            self.conv1.weight.value(),
            Some(self.conv1.bias.value()),
            __b,
            &mut *__cols3,
            &mut *__v3,
        )?;
        if self.__training {
            __rmean6.copy_from_slice(self.bn1.running_mean.data());
            __rvar6.copy_from_slice(self.bn1.running_var.data());
            ::nanograd::ops::batch_norm2d_train(
                &*__v3,
                __b,
                4usize,
                64usize,
                self.bn1.weight.value(),
                self.bn1.bias.value(),
                T::from_f64(0.00001f64),
                T::from_f64(0.1f64),
                &mut *__rmean6,
                &mut *__rvar6,
                &mut *__mean6,
                &mut *__invstd6,
                &mut *__v6,
            )?;
        } else {
            ::nanograd::ops::batch_norm2d_eval(
                &*__v3,
                __b,
                4usize,
                64usize,
                self.bn1.weight.value(),
                self.bn1.bias.value(),
                self.bn1.running_mean.data(),
                self.bn1.running_var.data(),
                T::from_f64(0.00001f64),
                &mut *__v6,
            )?;
        }
        ::nanograd::ops::relu(&*__v6, &mut *__v7)?;
        ::nanograd::ops::max_pool2d(
            &::nanograd::ops::Pool2dGeom {
                c: 4usize,
                h: 8usize,
                w: 8usize,
                kernel: 2usize,
                stride: 2usize,
                padding: 0usize,
            },
            &*__v7,
            __b,
            &mut *__v8,
        )?;
        ::nanograd::ops::dense(
            &*__v8,
            self.fc.weight.value(),
            Some(self.fc.bias.value()),
            __b,
            64usize,
            3usize,
            &mut *__v12,
        )?;
        ::nanograd::check_batch(
            concat!("Cnn", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut()).copy_from_slice(&*__v12);
        Ok(())
    }
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn __layer_forward_infer(
        &self,
        __b: usize,
        __x0: &[T],
        __y: &mut [T],
        __ws: &mut [T],
        __rng: &mut impl ::nanograd::rand::Rng,
        __packs: &mut [::nanograd::blas::PackedWeight<T>],
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let (__v3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__cols3, __ws) = __ws.split_at_mut(__b * 576usize + 4132usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__mean6, __ws) = __ws.split_at_mut(4usize);
        let (__invstd6, __ws) = __ws.split_at_mut(4usize);
        let (__rmean6, __ws) = __ws.split_at_mut(4usize);
        let (__rvar6, __ws) = __ws.split_at_mut(4usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__v12, __ws) = __ws.split_at_mut(__b * 3usize);
        let _ = __ws;
        ::nanograd::ops::conv2d(
            &::nanograd::ops::Conv2dGeom {
                c_in: 1usize,
                h: 8usize,
                w: 8usize,
                c_out: 4usize,
                kh: 3usize,
                kw: 3usize,
                stride: 1usize,
                padding: 1usize,
            },
            __x0,
            self.conv1.weight.value(),
            Some(self.conv1.bias.value()),
            __b,
            &mut *__cols3,
            &mut *__v3,
        )?;
        if self.__training {
            __rmean6.copy_from_slice(self.bn1.running_mean.data());
            __rvar6.copy_from_slice(self.bn1.running_var.data());
            ::nanograd::ops::batch_norm2d_train(
                &*__v3,
                __b,
                4usize,
                64usize,
                self.bn1.weight.value(),
                self.bn1.bias.value(),
                T::from_f64(0.00001f64),
                T::from_f64(0.1f64),
                &mut *__rmean6,
                &mut *__rvar6,
                &mut *__mean6,
                &mut *__invstd6,
                &mut *__v6,
            )?;
        } else {
            ::nanograd::ops::batch_norm2d_eval(
                &*__v3,
                __b,
                4usize,
                64usize,
                self.bn1.weight.value(),
                self.bn1.bias.value(),
                self.bn1.running_mean.data(),
                self.bn1.running_var.data(),
                T::from_f64(0.00001f64),
                &mut *__v6,
            )?;
        }
        ::nanograd::ops::relu(&*__v6, &mut *__v7)?;
        ::nanograd::ops::max_pool2d(
            &::nanograd::ops::Pool2dGeom {
                c: 4usize,
                h: 8usize,
                w: 8usize,
                kernel: 2usize,
                stride: 2usize,
                padding: 0usize,
            },
            &*__v7,
            __b,
            &mut *__v8,
        )?;
        ::nanograd::ops::dense(
            &*__v8,
            self.fc.weight.value(),
            Some(self.fc.bias.value()),
            __b,
            64usize,
            3usize,
            &mut *__v12,
        )?;
        ::nanograd::check_len(stringify!(Cnn), "output", __y.len(), (&*__v12).len())?;
        __y.copy_from_slice(&*__v12);
        Ok(())
    }
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn __layer_forward_train(
        &mut self,
        __b: usize,
        __x0: &[T],
        __y: &mut [T],
        __ws: &mut [T],
        __rng: &mut impl ::nanograd::rand::Rng,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let (__v3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__cols3, __ws) = __ws.split_at_mut(__b * 576usize + 4132usize);
        let (__v6, __ws) = __ws.split_at_mut(0usize);
        let (__mean6, __ws) = __ws.split_at_mut(4usize);
        let (__invstd6, __ws) = __ws.split_at_mut(4usize);
        let (__rmean6, __ws) = __ws.split_at_mut(4usize);
        let (__rvar6, __ws) = __ws.split_at_mut(4usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__v12, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__g6, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__g8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__g12, __ws) = __ws.split_at_mut(__b * 3usize);
        let _ = __ws;
        ::nanograd::ops::conv2d(
            &::nanograd::ops::Conv2dGeom {
                c_in: 1usize,
                h: 8usize,
                w: 8usize,
                c_out: 4usize,
                kh: 3usize,
                kw: 3usize,
                stride: 1usize,
                padding: 1usize,
            },
            __x0,
            self.conv1.weight.value(),
            Some(self.conv1.bias.value()),
            __b,
            &mut *__cols3,
            &mut *__v3,
        )?;
        if self.__training {
            ::nanograd::ops::batch_norm2d_train_relu_max_pool2d(
                &*__v3,
                __b,
                &::nanograd::ops::Pool2dGeom {
                    c: 4usize,
                    h: 8usize,
                    w: 8usize,
                    kernel: 2usize,
                    stride: 2usize,
                    padding: 0usize,
                },
                self.bn1.weight.value(),
                self.bn1.bias.value(),
                T::from_f64(0.00001f64),
                T::from_f64(0.1f64),
                self.bn1.running_mean.data_mut(),
                self.bn1.running_var.data_mut(),
                &mut *__mean6,
                &mut *__invstd6,
                &mut *__v8,
                ::nanograd::ops::workspace_bytes_mut(&mut *__v7),
            )?;
        } else {
            ::nanograd::ops::batch_norm2d_eval(
                &*__v3,
                __b,
                4usize,
                64usize,
                self.bn1.weight.value(),
                self.bn1.bias.value(),
                self.bn1.running_mean.data(),
                self.bn1.running_var.data(),
                T::from_f64(0.00001f64),
                &mut *__v7,
            )?;
            ::nanograd::ops::relu_in_place(&mut *__v7);
        }
        if !self.__training {
            ::nanograd::ops::max_pool2d(
                &::nanograd::ops::Pool2dGeom {
                    c: 4usize,
                    h: 8usize,
                    w: 8usize,
                    kernel: 2usize,
                    stride: 2usize,
                    padding: 0usize,
                },
                &*__v7,
                __b,
                &mut *__v8,
            )?;
        }
        ::nanograd::ops::dense(
            &*__v8,
            self.fc.weight.value(),
            Some(self.fc.bias.value()),
            __b,
            64usize,
            3usize,
            &mut *__v12,
        )?;
        ::nanograd::check_len(stringify!(Cnn), "output", __y.len(), (&*__v12).len())?;
        __y.copy_from_slice(&*__v12);
        Ok(())
    }
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn __layer_backward(
        &mut self,
        __b: usize,
        __x0: &[T],
        __dy: &[T],
        __dx: Option<&mut [T]>,
        __ws: &mut [T],
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let (__v3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__cols3, __ws) = __ws.split_at_mut(__b * 576usize + 4132usize);
        let (__v6, __ws) = __ws.split_at_mut(0usize);
        let (__mean6, __ws) = __ws.split_at_mut(4usize);
        let (__invstd6, __ws) = __ws.split_at_mut(4usize);
        let (__rmean6, __ws) = __ws.split_at_mut(4usize);
        let (__rvar6, __ws) = __ws.split_at_mut(4usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__v12, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__g6, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__g8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__g12, __ws) = __ws.split_at_mut(__b * 3usize);
        let _ = __ws;
        let (__dx_scratch, __ws) = __ws.split_at_mut(__x0.len());
        let __gx0: &mut [T] = match __dx {
            Some(__d) => __d,
            None => __dx_scratch,
        };
        (&mut *__g12).copy_from_slice(__dy);
        {
            let (__pv10, __pg10) = self.fc.weight.value_and_grad_mut();
            let (__pv11, __pg11) = self.fc.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v8,
                __pv10,
                &*__g12,
                __b,
                64usize,
                3usize,
                Some(&mut *__g8),
                Some(&mut *__pg10),
                Some(&mut *__pg11),
            )?;
        }
        {
            if !self.__training {
                ::nanograd::ops::max_pool2d_backward_through_relu(
                    &::nanograd::ops::Pool2dGeom {
                        c: 4usize,
                        h: 8usize,
                        w: 8usize,
                        kernel: 2usize,
                        stride: 2usize,
                        padding: 0usize,
                    },
                    &*__v7,
                    &*__v8,
                    &*__g8,
                    __b,
                    &mut *__g6,
                )?;
            }
        }
        {
            let (__pv4, __pg4) = self.bn1.weight.value_and_grad_mut();
            let (__pv5, __pg5) = self.bn1.bias.value_and_grad_mut();
            if self.__training {
                ::nanograd::ops::batch_norm2d_train_relu_max_pool2d_backward_overwrite(
                    &*__v3,
                    __b,
                    &::nanograd::ops::Pool2dGeom {
                        c: 4usize,
                        h: 8usize,
                        w: 8usize,
                        kernel: 2usize,
                        stride: 2usize,
                        padding: 0usize,
                    },
                    __pv4,
                    &*__mean6,
                    &*__invstd6,
                    ::nanograd::ops::workspace_bytes(&*__v7),
                    &*__g8,
                    Some(&mut *__g3),
                    Some(&mut *__pg4),
                    Some(&mut *__pg5),
                )?;
            } else {
                ::nanograd::ops::batch_norm2d_eval_backward_overwrite(
                    &*__v3,
                    __b,
                    4usize,
                    64usize,
                    __pv4,
                    self.bn1.running_mean.data(),
                    self.bn1.running_var.data(),
                    T::from_f64(0.00001f64),
                    &*__g6,
                    Some(&mut *__g3),
                    Some(&mut *__pg4),
                    Some(&mut *__pg5),
                )?;
            }
        }
        {
            let (__pv1, __pg1) = self.conv1.weight.value_and_grad_mut();
            let (__pv2, __pg2) = self.conv1.bias.value_and_grad_mut();
            ::nanograd::ops::conv2d_backward(
                &::nanograd::ops::Conv2dGeom {
                    c_in: 1usize,
                    h: 8usize,
                    w: 8usize,
                    c_out: 4usize,
                    kh: 3usize,
                    kw: 3usize,
                    stride: 1usize,
                    padding: 1usize,
                },
                __x0,
                __pv1,
                &*__g3,
                __b,
                &mut *__cols3,
                ::nanograd::ops::Conv2dCols::Kept,
                Some(&mut *__gx0),
                Some(&mut *__pg1),
                Some(&mut *__pg2),
            )?;
        }
        Ok(())
    }
}
impl<T: ::nanograd::Float> ::nanograd::Module<T> for Cnn<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params("conv1", &self.conv1, f);
        ::nanograd::module::visit_child_params("bn1", &self.bn1, f);
        ::nanograd::module::visit_child_params("pool", &self.pool, f);
        ::nanograd::module::visit_child_params("fc", &self.fc, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params_mut("conv1", &mut self.conv1, f);
        ::nanograd::module::visit_child_params_mut("bn1", &mut self.bn1, f);
        ::nanograd::module::visit_child_params_mut("pool", &mut self.pool, f);
        ::nanograd::module::visit_child_params_mut("fc", &mut self.fc, f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nanograd::Tensor<T>)) {
        ::nanograd::module::visit_child_buffers("conv1", &self.conv1, f);
        ::nanograd::module::visit_child_buffers("bn1", &self.bn1, f);
        ::nanograd::module::visit_child_buffers("pool", &self.pool, f);
        ::nanograd::module::visit_child_buffers("fc", &self.fc, f);
    }
    fn visit_buffers_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut ::nanograd::Tensor<T>),
    ) {
        ::nanograd::module::visit_child_buffers_mut("conv1", &mut self.conv1, f);
        ::nanograd::module::visit_child_buffers_mut("bn1", &mut self.bn1, f);
        ::nanograd::module::visit_child_buffers_mut("pool", &mut self.pool, f);
        ::nanograd::module::visit_child_buffers_mut("fc", &mut self.fc, f);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.__training = training;
        ::nanograd::Module::<T>::set_training_mode(&mut self.conv1, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.bn1, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.pool, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.fc, training);
    }
    fn is_training(&self) -> bool {
        self.__training
    }
    fn rng(&self) -> Option<&::nanograd::WorkspaceRng> {
        Some(self.__workspace.rng())
    }
    fn rng_mut(&mut self) -> Option<&mut ::nanograd::WorkspaceRng> {
        Some(self.__workspace.rng_mut())
    }
    fn summary(&self) -> ::nanograd::__private::String {
        let __rows = [
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("conv1"),
                kind: ::nanograd::__private::String::from("Conv2d"),
                output: ::nanograd::__private::String::from("[B, 4, 8, 8]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("conv1", &self.conv1, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("bn1"),
                kind: ::nanograd::__private::String::from("BatchNorm2d"),
                output: ::nanograd::__private::String::from("[B, 4, 8, 8]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("bn1", &self.bn1, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("pool"),
                kind: ::nanograd::__private::String::from("MaxPool2d"),
                output: ::nanograd::__private::String::from("[B, 4, 4, 4]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("pool", &self.pool, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("fc"),
                kind: ::nanograd::__private::String::from("Dense"),
                output: ::nanograd::__private::String::from("[B, 3]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("fc", &self.fc, &mut |_, p| __n += p.len());
                    __n
                },
            },
        ];
        let mut __buffers = 0;
        ::nanograd::Module::<T>::visit_buffers(self, &mut |_, b| __buffers += b.len());
        ::nanograd::module::layer_table("Cnn", "[B, 3]", &__rows, __buffers)
    }
}
#[doc(hidden)]
#[allow(unused_macros)]
macro_rules! __nanograd_layer_Cnn {
    ($($tt:tt)*) => {
        ::nanograd::model! { @ layer Cnn[B, 1, 8, 8] -> [B, 3] (2054, 4148, 0); $($tt)* }
    };
}
///`Cnn` with int8 dense and convolution weights (one scale per output channel), those of the models it uses as layers included, made by [`Cnn::quantize_int8`] or loaded by `CnnInt8::load_safetensors`. Activations entering those layers are quantized on every call, one scale per row (per image for a convolution); every other op runs in f32. Same methods as `Cnn`'s fns, on f32 inputs and outputs.
#[derive(Clone, Debug)]
pub struct CnnInt8 {
    __float: Cnn<f32>,
    __q: ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
}
impl<T: ::nanograd::Float> Cnn<T> {
    ///This model for int8 inference: dense and convolution weights quantized per output channel (symmetric, `s = max|w| / 127`), those of the models used as layers too, batch norms that follow a convolution folded into it, everything else kept in f32. Errors if a weight is not finite.
    #[allow(dead_code)]
    pub fn quantize_int8(&self) -> ::nanograd::Result<CnnInt8> {
        let mut __f = Cnn::<
            f32,
        >::new(
            &mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(
                0,
            ),
        );
        ::nanograd::quant::copy_to_f32(self, &mut __f)?;
        ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
        let mut __q = ::nanograd::__private::Vec::with_capacity(
            <Cnn<f32>>::__INT8_LAYERS,
        );
        __f.__int8_quantize(&mut __q)?;
        Ok(CnnInt8 { __float: __f, __q })
    }
}
#[allow(dead_code)]
impl Cnn<f32> {
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
    pub fn __int8_forward_into(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        x: &[[[[f32; 8usize]; 8usize]; 1usize]],
        out: &mut [[f32; 3usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let __b = x.len();
        let __x0: &[T] = x.as_flattened().as_flattened().as_flattened();
        let (__ws, __rng) = ws.split(__b * 1428usize + 4356usize);
        let (__ws, __qws) = __ws.split_at_mut(__b * 1411usize + 4148usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__cols3, __ws) = __ws.split_at_mut(__b * 576usize + 4132usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__mean6, __ws) = __ws.split_at_mut(4usize);
        let (__invstd6, __ws) = __ws.split_at_mut(4usize);
        let (__rmean6, __ws) = __ws.split_at_mut(4usize);
        let (__rvar6, __ws) = __ws.split_at_mut(4usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__v12, __ws) = __ws.split_at_mut(__b * 3usize);
        let _ = __ws;
        let (__qs3, __qws) = __qws.split_at_mut(208usize);
        let (__qs12, __qws) = __qws.split_at_mut(__b * 17usize);
        let _ = __qws;
        ::nanograd::quant::conv2d_int8(
            &::nanograd::ops::Conv2dGeom {
                c_in: 1usize,
                h: 8usize,
                w: 8usize,
                c_out: 4usize,
                kh: 3usize,
                kw: 3usize,
                stride: 1usize,
                padding: 1usize,
            },
            __x0,
            &__q[0usize],
            __q[0usize].folded_bias(),
            __b,
            &mut *__qs3,
            &mut *__v6,
        )?;
        ::nanograd::ops::relu(&*__v6, &mut *__v7)?;
        ::nanograd::ops::max_pool2d(
            &::nanograd::ops::Pool2dGeom {
                c: 4usize,
                h: 8usize,
                w: 8usize,
                kernel: 2usize,
                stride: 2usize,
                padding: 0usize,
            },
            &*__v7,
            __b,
            &mut *__v8,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v8,
            &__q[1usize],
            Some(self.fc.bias.value()),
            __b,
            64usize,
            3usize,
            &mut *__v12,
            &mut *__qs12,
        )?;
        ::nanograd::check_batch(
            concat!("CnnInt8", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut()).copy_from_slice(&*__v12);
        Ok(())
    }
    /// The int8 layers of this model and of the models it uses as layers.
    #[doc(hidden)]
    pub const __INT8_LAYERS: usize = 2usize;
    /// Quantizes this model's dense and convolution weights, then those of the
    /// models it uses as layers, in the order of `__int8_names`.
    #[doc(hidden)]
    pub fn __int8_quantize(
        &self,
        __out: &mut ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
    ) -> ::nanograd::Result<()> {
        __out
            .push(
                ::nanograd::quant::QuantizedLayer::conv2d_folding_bn(
                    self.conv1.weight.value(),
                    &[4usize, 1usize, 3usize, 3usize],
                    Some(self.conv1.bias.value()),
                    self.bn1.weight.value(),
                    self.bn1.bias.value(),
                    self.bn1.running_mean.data(),
                    self.bn1.running_var.data(),
                    0.00001f32,
                )?,
            );
        __out
            .push(
                ::nanograd::quant::QuantizedLayer::new(
                    self.fc.weight.value(),
                    &[3usize, 64usize],
                )?,
            );
        Ok(())
    }
    /// The file names of the int8 layers, under `__prefix`.
    #[doc(hidden)]
    pub fn __int8_names(
        __prefix: &str,
        __out: &mut ::nanograd::__private::Vec<::nanograd::quant::Int8Name>,
    ) {
        __out
            .push(
                ::nanograd::quant::Int8Name::new(
                    __prefix,
                    "conv1.weight",
                    "conv1.bias",
                    &[4usize, 1usize, 3usize, 3usize],
                    Some("bn1"),
                ),
            );
        __out
            .push(
                ::nanograd::quant::Int8Name::new(
                    __prefix,
                    "fc.weight",
                    "fc.bias",
                    &[3usize, 64usize],
                    None,
                ),
            );
    }
    /// The tensors that stay f32 and are not saved, under `__prefix`: the float
    /// weights replaced by int8 ones, and the batch norms folded into convolutions.
    #[doc(hidden)]
    pub fn __int8_unread(
        __prefix: &str,
        __out: &mut ::nanograd::__private::Vec<::nanograd::__private::String>,
    ) {
        ::nanograd::quant::push_prefixed(
            __out,
            __prefix,
            &[
                "conv1.weight",
                "conv1.bias",
                "bn1.weight",
                "bn1.bias",
                "fc.weight",
                "bn1.running_mean",
                "bn1.running_var",
            ],
        );
    }
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn __layer_forward_int8(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        __b: usize,
        __x0: &[f32],
        __y: &mut [f32],
        __ws: &mut [f32],
        __rng: &mut impl ::nanograd::rand::Rng,
        __packs: &mut [::nanograd::blas::PackedWeight<f32>],
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        ::nanograd::check_len(
            stringify!(Cnn),
            "workspace",
            Self::__int8_layer_ws_len(__b),
            __ws.len(),
        )?;
        let (__ws, __qws) = __ws.split_at_mut(__b * 1411usize + 4148usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__cols3, __ws) = __ws.split_at_mut(__b * 576usize + 4132usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__mean6, __ws) = __ws.split_at_mut(4usize);
        let (__invstd6, __ws) = __ws.split_at_mut(4usize);
        let (__rmean6, __ws) = __ws.split_at_mut(4usize);
        let (__rvar6, __ws) = __ws.split_at_mut(4usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 256usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 64usize);
        let (__v12, __ws) = __ws.split_at_mut(__b * 3usize);
        let _ = __ws;
        let (__qs3, __qws) = __qws.split_at_mut(208usize);
        let (__qs12, __qws) = __qws.split_at_mut(__b * 17usize);
        let _ = __qws;
        ::nanograd::quant::conv2d_int8(
            &::nanograd::ops::Conv2dGeom {
                c_in: 1usize,
                h: 8usize,
                w: 8usize,
                c_out: 4usize,
                kh: 3usize,
                kw: 3usize,
                stride: 1usize,
                padding: 1usize,
            },
            __x0,
            &__q[0usize],
            __q[0usize].folded_bias(),
            __b,
            &mut *__qs3,
            &mut *__v6,
        )?;
        ::nanograd::ops::relu(&*__v6, &mut *__v7)?;
        ::nanograd::ops::max_pool2d(
            &::nanograd::ops::Pool2dGeom {
                c: 4usize,
                h: 8usize,
                w: 8usize,
                kernel: 2usize,
                stride: 2usize,
                padding: 0usize,
            },
            &*__v7,
            __b,
            &mut *__v8,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v8,
            &__q[1usize],
            Some(self.fc.bias.value()),
            __b,
            64usize,
            3usize,
            &mut *__v12,
            &mut *__qs12,
        )?;
        ::nanograd::check_len(stringify!(Cnn), "output", __y.len(), (&*__v12).len())?;
        __y.copy_from_slice(&*__v12);
        Ok(())
    }
    /// The workspace of `__layer_forward_int8` for `__b` rows, in f32 elements.
    #[doc(hidden)]
    #[allow(unused_variables, clippy::all)]
    pub const fn __int8_layer_ws_len(__b: usize) -> usize {
        __b * 1428usize + 4356usize
    }
}
#[allow(dead_code)]
impl CnnInt8 {
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        x: &[[[[f32; 8usize]; 8usize]; 1usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[f32; 3usize]>> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let mut __out = ::nanograd::__private::Vec::with_capacity(x.len());
        __out.resize(x.len(), [T::zero(); 3usize]);
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.forward_into(x, &mut __out, __ws) },
        )?;
        Ok(__out)
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(clippy::all)]
    pub fn forward_into(
        &self,
        x: &[[[[f32; 8usize]; 8usize]; 1usize]],
        out: &mut [[f32; 3usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        self.__float.__int8_forward_into(&self.__q, x, out, ws)
    }
    fn __names() -> ::nanograd::__private::Vec<::nanograd::quant::Int8Name> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Cnn<f32>>::__int8_names("", &mut __out);
        __out
    }
    fn __unread() -> ::nanograd::__private::Vec<::nanograd::__private::String> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Cnn<f32>>::__int8_unread("", &mut __out);
        __out
    }
    /// The int8 weights, one line each (`fc1.weight`, `conv1.weight (with bn1 folded
    /// in)`, `h.0.fc.weight` in a model used as a layer).
    pub fn int8_weights(
        &self,
    ) -> ::nanograd::__private::Vec<::nanograd::__private::String> {
        Self::__names().iter().map(|n| n.summary()).collect()
    }
    /// The quantized layers, in the order of [`Self::int8_weights`].
    pub fn quantized_layers(&self) -> &[::nanograd::quant::QuantizedLayer] {
        &self.__q
    }
    /// The f32 model whose other tensors this one uses (in evaluation mode).
    pub fn float_part(&self) -> &Cnn<f32> {
        &self.__float
    }
}
impl ::nanograd::quant::QuantizedSafetensors for CnnInt8 {
    fn to_safetensors_bytes(
        &self,
    ) -> ::nanograd::Result<::nanograd::__private::Vec<u8>> {
        let __unread = Self::__unread();
        let __skip: ::nanograd::__private::Vec<&str> = __unread
            .iter()
            .map(|n| n.as_str())
            .collect();
        let mut __t = ::nanograd::quant::QuantizedTensors::new();
        __t.push_float_model(&self.__float, &__skip);
        for (__n, __l) in Self::__names().iter().zip(&self.__q) {
            __t.push_layer(&__n.weight, &__n.bias, __l);
        }
        __t.to_bytes()
    }
    fn from_safetensors_bytes_of(
        bytes: &[u8],
        origin: &::nanograd::quant::Origin,
    ) -> ::nanograd::Result<Self> {
        let mut __f = Cnn::<
            f32,
        >::new(
            &mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(
                0,
            ),
        );
        ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
        let __unread = Self::__unread();
        let __skip: ::nanograd::__private::Vec<&str> = __unread
            .iter()
            .map(|n| n.as_str())
            .collect();
        let __names = Self::__names();
        let mut __file = ::nanograd::quant::QuantizedFile::parse(bytes, origin)?;
        let __staged = __file.stage_float_model(&__f, &__skip);
        let __q: ::nanograd::__private::Vec<_> = __names
            .iter()
            .map(|__n| {
                __file.layer(&__n.weight, &__n.shape, &__n.bias, __n.folded.is_some())
            })
            .collect();
        __file.finish()?;
        ::nanograd::quant::QuantizedFile::commit_float_model(&mut __f, &__staged);
        let __q = __q.into_iter().flatten().collect::<::nanograd::__private::Vec<_>>();
        ::nanograd::check_len("CnnInt8", "int8 layers", __names.len(), __q.len())?;
        Ok(Self { __float: __f, __q })
    }
}
