#[derive(Clone, Debug)]
pub struct Mlp<T: ::nanograd::Float = f32> {
    pub fc1: ::nanograd::layers::Dense<T>,
    pub fc2: ::nanograd::layers::Dense<T>,
    __training: bool,
    __workspace: ::nanograd::Workspace<T>,
}
impl<T: ::nanograd::Float> Mlp<T> {
    ///A new model with freshly initialised parameters (Xavier for dense layers, He for convolutions), in training mode.
    #[allow(dead_code)]
    pub fn new(rng: &mut impl ::nanograd::rand::Rng) -> Self {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        Self {
            fc1: ::nanograd::layers::Dense::new(4usize, 3usize, rng)
                .expect("nanograd: model! validated the layer `fc1`"),
            fc2: ::nanograd::layers::Dense::new(3usize, 2usize, rng)
                .expect("nanograd: model! validated the layer `fc2`"),
            __training: true,
            __workspace: ::nanograd::Workspace::with_seed(rng.next_u64()),
        }
    }
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        x: &[[T; 4usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[T; 2usize]>> {
        let mut __out = ::nanograd::__private::Vec::with_capacity(x.len());
        __out.resize(x.len(), [T::zero(); 2usize]);
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
        x: &[[T; 4usize]],
        out: &mut [[T; 2usize]],
        ws: &mut ::nanograd::Workspace<T>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = x.len();
        let __x0: &[T] = x.as_flattened();
        let (__ws, __rng) = ws.split(__b * 8usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 2usize);
        let _ = __ws;
        ::nanograd::ops::dense(
            __x0,
            self.fc1.weight.value(),
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v3,
        )?;
        ::nanograd::ops::relu(&*__v3, &mut *__v4)?;
        ::nanograd::ops::dense(
            &*__v4,
            self.fc2.weight.value(),
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v7,
        )?;
        ::nanograd::check_batch(
            concat!("Mlp", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut()).copy_from_slice(&*__v7);
        Ok(())
    }
    #[allow(clippy::all)]
    pub fn loss(&self, x: &[[T; 4usize]], t: &[[T; 2usize]]) -> ::nanograd::Result<T> {
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.loss_into(x, t, __ws) },
        )
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn loss_into(
        &self,
        x: &[[T; 4usize]],
        t: &[[T; 2usize]],
        ws: &mut ::nanograd::Workspace<T>,
    ) -> ::nanograd::Result<T> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = x.len();
        ::nanograd::check_batch("Mlp::loss", "t", __b, t.len())?;
        let __x0: &[T] = x.as_flattened();
        let __x1: &[T] = t.as_flattened();
        let (__ws, __rng) = ws.split(__b * 8usize + 1usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 2usize);
        let (__v9, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        ::nanograd::ops::dense(
            __x0,
            self.fc1.weight.value(),
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v4,
        )?;
        ::nanograd::ops::relu(&*__v4, &mut *__v5)?;
        ::nanograd::ops::dense(
            &*__v5,
            self.fc2.weight.value(),
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v8,
        )?;
        __v9[0] = ::nanograd::ops::mse_loss(&*__v8, __x1)?;
        Ok((&*__v9)[0])
    }
    ///Computes `loss` and adds its gradient to every parameter's `grad` (call `zero_grad` between steps). In training mode, batch norm updates its running statistics. Allocates only while the model's workspace grows to the largest batch seen.
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn loss_backward(
        &mut self,
        x: &[[T; 4usize]],
        t: &[[T; 2usize]],
    ) -> ::nanograd::Result<T> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = x.len();
        ::nanograd::check_batch("Mlp::loss", "t", __b, t.len())?;
        let __x0: &[T] = x.as_flattened();
        let __x1: &[T] = t.as_flattened();
        let (__ws, __rng) = self.__workspace.split(__b * 16usize + 2usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 2usize);
        let (__v9, __ws) = __ws.split_at_mut(1usize);
        let (__g4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g5, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g8, __ws) = __ws.split_at_mut(__b * 2usize);
        let (__g9, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        ::nanograd::ops::dense(
            __x0,
            self.fc1.weight.value(),
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v4,
        )?;
        ::nanograd::ops::relu(&*__v4, &mut *__v5)?;
        ::nanograd::ops::dense(
            &*__v5,
            self.fc2.weight.value(),
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v8,
        )?;
        __v9[0] = ::nanograd::ops::mse_loss(&*__v8, __x1)?;
        let __result = (&*__v9)[0];
        __g8.fill(T::zero());
        (&mut *__g9).copy_from_slice(&[T::one()][..]);
        {
            ::nanograd::ops::mse_loss_backward(
                &*__v8,
                __x1,
                __g9[0],
                Some(&mut *__g8),
                None,
            )?;
        }
        {
            let (__pv6, __pg6) = self.fc2.weight.value_and_grad_mut();
            let (__pv7, __pg7) = self.fc2.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v5,
                __pv6,
                &*__g8,
                __b,
                3usize,
                2usize,
                Some(&mut *__g5),
                Some(&mut *__pg6),
                Some(&mut *__pg7),
            )?;
        }
        {
            ::nanograd::ops::relu_backward_overwrite(
                &*__v4,
                &*__v5,
                &*__g5,
                &mut *__g4,
            )?;
        }
        {
            let (__pv2, __pg2) = self.fc1.weight.value_and_grad_mut();
            let (__pv3, __pg3) = self.fc1.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward(
                __x0,
                __pv2,
                &*__g4,
                __b,
                4usize,
                3usize,
                None,
                Some(&mut *__pg2),
                Some(&mut *__pg3),
            )?;
        }
        Ok(__result)
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
        let (__v3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 2usize);
        let _ = __ws;
        ::nanograd::ops::dense(
            __x0,
            self.fc1.weight.value(),
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v3,
        )?;
        ::nanograd::ops::relu(&*__v3, &mut *__v4)?;
        ::nanograd::ops::dense(
            &*__v4,
            self.fc2.weight.value(),
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v7,
        )?;
        ::nanograd::check_len(stringify!(Mlp), "output", __y.len(), (&*__v7).len())?;
        __y.copy_from_slice(&*__v7);
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
        let (__v3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 2usize);
        let (__g3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 2usize);
        let _ = __ws;
        ::nanograd::ops::dense(
            __x0,
            self.fc1.weight.value(),
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v3,
        )?;
        ::nanograd::ops::relu(&*__v3, &mut *__v4)?;
        ::nanograd::ops::dense(
            &*__v4,
            self.fc2.weight.value(),
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v7,
        )?;
        ::nanograd::check_len(stringify!(Mlp), "output", __y.len(), (&*__v7).len())?;
        __y.copy_from_slice(&*__v7);
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
        let (__v3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 2usize);
        let (__g3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 2usize);
        let _ = __ws;
        let (__dx_scratch, __ws) = __ws.split_at_mut(__x0.len());
        let __gx0: &mut [T] = match __dx {
            Some(__d) => __d,
            None => __dx_scratch,
        };
        (&mut *__g7).copy_from_slice(__dy);
        {
            let (__pv5, __pg5) = self.fc2.weight.value_and_grad_mut();
            let (__pv6, __pg6) = self.fc2.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v4,
                __pv5,
                &*__g7,
                __b,
                3usize,
                2usize,
                Some(&mut *__g4),
                Some(&mut *__pg5),
                Some(&mut *__pg6),
            )?;
        }
        {
            ::nanograd::ops::relu_backward_overwrite(
                &*__v3,
                &*__v4,
                &*__g4,
                &mut *__g3,
            )?;
        }
        {
            let (__pv1, __pg1) = self.fc1.weight.value_and_grad_mut();
            let (__pv2, __pg2) = self.fc1.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward(
                __x0,
                __pv1,
                &*__g3,
                __b,
                4usize,
                3usize,
                Some(&mut *__gx0),
                Some(&mut *__pg1),
                Some(&mut *__pg2),
            )?;
        }
        Ok(())
    }
}
impl<T: ::nanograd::Float> ::nanograd::Module<T> for Mlp<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params("fc1", &self.fc1, f);
        ::nanograd::module::visit_child_params("fc2", &self.fc2, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params_mut("fc1", &mut self.fc1, f);
        ::nanograd::module::visit_child_params_mut("fc2", &mut self.fc2, f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nanograd::Tensor<T>)) {
        ::nanograd::module::visit_child_buffers("fc1", &self.fc1, f);
        ::nanograd::module::visit_child_buffers("fc2", &self.fc2, f);
    }
    fn visit_buffers_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut ::nanograd::Tensor<T>),
    ) {
        ::nanograd::module::visit_child_buffers_mut("fc1", &mut self.fc1, f);
        ::nanograd::module::visit_child_buffers_mut("fc2", &mut self.fc2, f);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.__training = training;
        ::nanograd::Module::<T>::set_training_mode(&mut self.fc1, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.fc2, training);
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
                name: ::nanograd::__private::String::from("fc1"),
                kind: ::nanograd::__private::String::from("Dense"),
                output: ::nanograd::__private::String::from("[B, 3]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("fc1", &self.fc1, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("fc2"),
                kind: ::nanograd::__private::String::from("Dense"),
                output: ::nanograd::__private::String::from("[B, 2]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("fc2", &self.fc2, &mut |_, p| __n += p.len());
                    __n
                },
            },
        ];
        let mut __buffers = 0;
        ::nanograd::Module::<T>::visit_buffers(self, &mut |_, b| __buffers += b.len());
        ::nanograd::module::layer_table("Mlp", "[B, 2]", &__rows, __buffers)
    }
}
#[doc(hidden)]
#[allow(unused_macros)]
macro_rules! __nanograd_layer_Mlp {
    ($($tt:tt)*) => {
        ::nanograd::model! { @ layer Mlp[B, 4] -> [B, 2] (20, 0, 0); $($tt)* }
    };
}
///`Mlp` with int8 dense and convolution weights (one scale per output channel), those of the models it uses as layers included, made by [`Mlp::quantize_int8`] or loaded by `MlpInt8::load_safetensors`. Activations entering those layers are quantized on every call, one scale per row (per image for a convolution); every other op runs in f32. Same methods as `Mlp`'s fns, on f32 inputs and outputs.
#[derive(Clone, Debug)]
pub struct MlpInt8 {
    __float: Mlp<f32>,
    __q: ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
}
impl<T: ::nanograd::Float> Mlp<T> {
    ///This model for int8 inference: dense and convolution weights quantized per output channel (symmetric, `s = max|w| / 127`), those of the models used as layers too, batch norms that follow a convolution folded into it, everything else kept in f32. Errors if a weight is not finite.
    #[allow(dead_code)]
    pub fn quantize_int8(&self) -> ::nanograd::Result<MlpInt8> {
        let mut __f = Mlp::<
            f32,
        >::new(
            &mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(
                0,
            ),
        );
        ::nanograd::quant::copy_to_f32(self, &mut __f)?;
        ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
        let mut __q = ::nanograd::__private::Vec::with_capacity(
            <Mlp<f32>>::__INT8_LAYERS,
        );
        __f.__int8_quantize(&mut __q)?;
        Ok(MlpInt8 { __float: __f, __q })
    }
}
#[allow(dead_code)]
impl Mlp<f32> {
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
    pub fn __int8_forward_into(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        x: &[[f32; 4usize]],
        out: &mut [[f32; 2usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let __b = x.len();
        let __x0: &[T] = x.as_flattened();
        let (__ws, __rng) = ws.split(__b * 12usize);
        let (__ws, __qws) = __ws.split_at_mut(__b * 8usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 2usize);
        let _ = __ws;
        let (__qs3, __qws) = __qws.split_at_mut(__b * 2usize);
        let (__qs7, __qws) = __qws.split_at_mut(__b * 2usize);
        let _ = __qws;
        ::nanograd::quant::dense_int8(
            __x0,
            &__q[0usize],
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v3,
            &mut *__qs3,
        )?;
        ::nanograd::ops::relu(&*__v3, &mut *__v4)?;
        ::nanograd::quant::dense_int8(
            &*__v4,
            &__q[1usize],
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v7,
            &mut *__qs7,
        )?;
        ::nanograd::check_batch(
            concat!("MlpInt8", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut()).copy_from_slice(&*__v7);
        Ok(())
    }
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
    pub fn __int8_loss_into(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        x: &[[f32; 4usize]],
        t: &[[f32; 2usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<f32> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let __b = x.len();
        ::nanograd::check_batch("MlpInt8::loss", "t", __b, t.len())?;
        let __x0: &[T] = x.as_flattened();
        let __x1: &[T] = t.as_flattened();
        let (__ws, __rng) = ws.split(__b * 12usize + 1usize);
        let (__ws, __qws) = __ws.split_at_mut(__b * 8usize + 1usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 2usize);
        let (__v9, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        let (__qs4, __qws) = __qws.split_at_mut(__b * 2usize);
        let (__qs8, __qws) = __qws.split_at_mut(__b * 2usize);
        let _ = __qws;
        ::nanograd::quant::dense_int8(
            __x0,
            &__q[0usize],
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v4,
            &mut *__qs4,
        )?;
        ::nanograd::ops::relu(&*__v4, &mut *__v5)?;
        ::nanograd::quant::dense_int8(
            &*__v5,
            &__q[1usize],
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v8,
            &mut *__qs8,
        )?;
        __v9[0] = ::nanograd::ops::mse_loss(&*__v8, __x1)?;
        Ok((&*__v9)[0])
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
                ::nanograd::quant::QuantizedLayer::new(
                    self.fc1.weight.value(),
                    &[3usize, 4usize],
                )?,
            );
        __out
            .push(
                ::nanograd::quant::QuantizedLayer::new(
                    self.fc2.weight.value(),
                    &[2usize, 3usize],
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
                    "fc1.weight",
                    "fc1.bias",
                    &[3usize, 4usize],
                    None,
                ),
            );
        __out
            .push(
                ::nanograd::quant::Int8Name::new(
                    __prefix,
                    "fc2.weight",
                    "fc2.bias",
                    &[2usize, 3usize],
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
        ::nanograd::quant::push_prefixed(__out, __prefix, &["fc1.weight", "fc2.weight"]);
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
            stringify!(Mlp),
            "workspace",
            Self::__int8_layer_ws_len(__b),
            __ws.len(),
        )?;
        let (__ws, __qws) = __ws.split_at_mut(__b * 8usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 3usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 2usize);
        let _ = __ws;
        let (__qs3, __qws) = __qws.split_at_mut(__b * 2usize);
        let (__qs7, __qws) = __qws.split_at_mut(__b * 2usize);
        let _ = __qws;
        ::nanograd::quant::dense_int8(
            __x0,
            &__q[0usize],
            Some(self.fc1.bias.value()),
            __b,
            4usize,
            3usize,
            &mut *__v3,
            &mut *__qs3,
        )?;
        ::nanograd::ops::relu(&*__v3, &mut *__v4)?;
        ::nanograd::quant::dense_int8(
            &*__v4,
            &__q[1usize],
            Some(self.fc2.bias.value()),
            __b,
            3usize,
            2usize,
            &mut *__v7,
            &mut *__qs7,
        )?;
        ::nanograd::check_len(stringify!(Mlp), "output", __y.len(), (&*__v7).len())?;
        __y.copy_from_slice(&*__v7);
        Ok(())
    }
    /// The workspace of `__layer_forward_int8` for `__b` rows, in f32 elements.
    #[doc(hidden)]
    #[allow(unused_variables, clippy::all)]
    pub const fn __int8_layer_ws_len(__b: usize) -> usize {
        __b * 12usize
    }
}
#[allow(dead_code)]
impl MlpInt8 {
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        x: &[[f32; 4usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[f32; 2usize]>> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let mut __out = ::nanograd::__private::Vec::with_capacity(x.len());
        __out.resize(x.len(), [T::zero(); 2usize]);
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
        x: &[[f32; 4usize]],
        out: &mut [[f32; 2usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        self.__float.__int8_forward_into(&self.__q, x, out, ws)
    }
    #[allow(clippy::all)]
    pub fn loss(
        &self,
        x: &[[f32; 4usize]],
        t: &[[f32; 2usize]],
    ) -> ::nanograd::Result<f32> {
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.loss_into(x, t, __ws) },
        )
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(clippy::all)]
    pub fn loss_into(
        &self,
        x: &[[f32; 4usize]],
        t: &[[f32; 2usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<f32> {
        self.__float.__int8_loss_into(&self.__q, x, t, ws)
    }
    fn __names() -> ::nanograd::__private::Vec<::nanograd::quant::Int8Name> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Mlp<f32>>::__int8_names("", &mut __out);
        __out
    }
    fn __unread() -> ::nanograd::__private::Vec<::nanograd::__private::String> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Mlp<f32>>::__int8_unread("", &mut __out);
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
    pub fn float_part(&self) -> &Mlp<f32> {
        &self.__float
    }
}
impl ::nanograd::quant::QuantizedSafetensors for MlpInt8 {
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
        let mut __f = Mlp::<
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
        ::nanograd::check_len("MlpInt8", "int8 layers", __names.len(), __q.len())?;
        Ok(Self { __float: __f, __q })
    }
}
