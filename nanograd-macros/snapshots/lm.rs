#[derive(Clone, Debug)]
pub struct Lm<T: ::nanograd::Float = f32> {
    pub wte: ::nanograd::layers::Embedding<T>,
    pub wpe: ::nanograd::Param<T>,
    pub h: [Block<T>; 2usize],
    pub lm_head: ::nanograd::layers::Dense<T>,
    __training: bool,
    __workspace: ::nanograd::Workspace<T>,
}
impl<T: ::nanograd::Float> Lm<T> {
    ///A new model with freshly initialised parameters (Xavier for dense layers, He for convolutions), in training mode.
    #[allow(dead_code)]
    pub fn new(rng: &mut impl ::nanograd::rand::Rng) -> Self {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        Self {
            wte: ::nanograd::layers::Embedding::new(11usize, 16usize, rng)
                .expect("nanograd: model! validated the layer `wte`"),
            wpe: {
                let mut __v = ::nanograd::__private::vec![T::zero(); 128usize];
                ::nanograd::init::normal(0.0, 1f64, rng, &mut __v)
                    .expect("nanograd: model! validated the layer `wpe`");
                ::nanograd::Param::new(&[8usize, 16usize], __v)
                    .expect("nanograd: model! validated the layer `wpe`")
            },
            h: ::core::array::from_fn(|_| Block::new(&mut *rng)),
            lm_head: ::nanograd::layers::Dense::without_bias(16usize, 11usize, rng)
                .expect("nanograd: model! validated the layer `lm_head`"),
            __training: true,
            __workspace: ::nanograd::Workspace::with_seed(rng.next_u64()),
        }
    }
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        idx: &[[u32; 8usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[[T; 11usize]; 8usize]>> {
        let mut __out = ::nanograd::__private::Vec::with_capacity(idx.len());
        __out.resize(idx.len(), [[T::zero(); 11usize]; 8usize]);
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.forward_into(idx, &mut __out, __ws) },
        )?;
        Ok(__out)
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn forward_into(
        &self,
        idx: &[[u32; 8usize]],
        out: &mut [[[T; 11usize]; 8usize]],
        ws: &mut ::nanograd::Workspace<T>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = idx.len();
        let __x0: &[u32] = idx.as_flattened();
        let (__ws, __rng) = ws.split(__b * 800usize + 20usize);
        let (__v2, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub5, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub6, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 88usize);
        let _ = __ws;
        ::nanograd::ops::embedding(
            __x0,
            self.wte.weight.value(),
            11usize,
            16usize,
            &mut *__v2,
        )?;
        ::nanograd::ops::add(&*__v2, self.wpe.value(), &mut *__v4)?;
        self.h[0usize]
            .__layer_forward_infer(
                __b,
                &*__v4,
                &mut *__v5,
                &mut *__sub5,
                &mut *__rng,
                &mut [],
            )?;
        self.h[1usize]
            .__layer_forward_infer(
                __b,
                &*__v5,
                &mut *__v6,
                &mut *__sub6,
                &mut *__rng,
                &mut [],
            )?;
        ::nanograd::ops::dense(
            &*__v6,
            self.lm_head.weight.value(),
            None,
            __b * 8usize,
            16usize,
            11usize,
            &mut *__v8,
        )?;
        ::nanograd::check_batch(
            concat!("Lm", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut().as_flattened_mut()).copy_from_slice(&*__v8);
        Ok(())
    }
    #[allow(clippy::all)]
    pub fn loss(
        &self,
        idx: &[[u32; 8usize]],
        t: &[[u32; 8usize]],
    ) -> ::nanograd::Result<T> {
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.loss_into(idx, t, __ws) },
        )
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn loss_into(
        &self,
        idx: &[[u32; 8usize]],
        t: &[[u32; 8usize]],
        ws: &mut ::nanograd::Workspace<T>,
    ) -> ::nanograd::Result<T> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = idx.len();
        ::nanograd::check_batch("Lm::loss", "t", __b, t.len())?;
        let __x0: &[u32] = idx.as_flattened();
        let __x1: &[u32] = t.as_flattened();
        let (__ws, __rng) = ws.split(__b * 800usize + 21usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub6, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub7, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v9, __ws) = __ws.split_at_mut(__b * 88usize);
        let (__v10, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        ::nanograd::ops::embedding(
            __x0,
            self.wte.weight.value(),
            11usize,
            16usize,
            &mut *__v3,
        )?;
        ::nanograd::ops::add(&*__v3, self.wpe.value(), &mut *__v5)?;
        self.h[0usize]
            .__layer_forward_infer(
                __b,
                &*__v5,
                &mut *__v6,
                &mut *__sub6,
                &mut *__rng,
                &mut [],
            )?;
        self.h[1usize]
            .__layer_forward_infer(
                __b,
                &*__v6,
                &mut *__v7,
                &mut *__sub7,
                &mut *__rng,
                &mut [],
            )?;
        ::nanograd::ops::dense(
            &*__v7,
            self.lm_head.weight.value(),
            None,
            __b * 8usize,
            16usize,
            11usize,
            &mut *__v9,
        )?;
        __v10[0] = ::nanograd::ops::softmax_cross_entropy_indices(
            &*__v9,
            __x1,
            11usize,
        )?;
        Ok((&*__v10)[0])
    }
    ///Computes `loss` and adds its gradient to every parameter's `grad` (call `zero_grad` between steps). In training mode, batch norm updates its running statistics. Allocates only while the model's workspace grows to the largest batch seen.
    #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
    pub fn loss_backward(
        &mut self,
        idx: &[[u32; 8usize]],
        t: &[[u32; 8usize]],
    ) -> ::nanograd::Result<T> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = idx.len();
        ::nanograd::check_batch("Lm::loss", "t", __b, t.len())?;
        let __x0: &[u32] = idx.as_flattened();
        let __x1: &[u32] = t.as_flattened();
        let (__ws, __rng) = self.__workspace.split(__b * 1272usize + 22usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub6, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub7, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v9, __ws) = __ws.split_at_mut(__b * 88usize);
        let (__v10, __ws) = __ws.split_at_mut(1usize);
        let (__g5, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g6, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g9, __ws) = __ws.split_at_mut(__b * 88usize);
        let (__g10, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        ::nanograd::ops::embedding(
            __x0,
            self.wte.weight.value(),
            11usize,
            16usize,
            &mut *__v3,
        )?;
        ::nanograd::ops::add(&*__v3, self.wpe.value(), &mut *__v5)?;
        self.h[0usize]
            .__layer_forward_train(__b, &*__v5, &mut *__v6, &mut *__sub6, &mut *__rng)?;
        self.h[1usize]
            .__layer_forward_train(__b, &*__v6, &mut *__v7, &mut *__sub7, &mut *__rng)?;
        ::nanograd::ops::dense(
            &*__v7,
            self.lm_head.weight.value(),
            None,
            __b * 8usize,
            16usize,
            11usize,
            &mut *__v9,
        )?;
        __v10[0] = ::nanograd::ops::softmax_cross_entropy_indices(
            &*__v9,
            __x1,
            11usize,
        )?;
        let __result = (&*__v10)[0];
        __g5.fill(T::zero());
        __g6.fill(T::zero());
        __g9.fill(T::zero());
        (&mut *__g10).copy_from_slice(&[T::one()][..]);
        {
            ::nanograd::ops::softmax_cross_entropy_indices_backward(
                &*__v9,
                __x1,
                11usize,
                __g10[0],
                &mut *__g9,
            )?;
        }
        {
            let (__pv8, __pg8) = self.lm_head.weight.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v7,
                __pv8,
                &*__g9,
                __b * 8usize,
                16usize,
                11usize,
                Some(&mut *__g7),
                Some(&mut *__pg8),
                None,
            )?;
        }
        {
            self.h[1usize]
                .__layer_backward(__b, &*__v6, &*__g7, Some(&mut *__g6), &mut *__sub7)?;
        }
        {
            self.h[0usize]
                .__layer_backward(__b, &*__v5, &*__g6, Some(&mut *__g5), &mut *__sub6)?;
        }
        {
            let (__pv4, __pg4) = self.wpe.value_and_grad_mut();
            ::nanograd::ops::add_backward(&*__g5, None, Some(&mut *__pg4))?;
        }
        {
            let (__pv2, __pg2) = self.wte.weight.value_and_grad_mut();
            ::nanograd::ops::embedding_backward(
                __x0,
                &*__g5,
                11usize,
                16usize,
                &mut *__pg2,
            )?;
        }
        Ok(__result)
    }
}
impl<T: ::nanograd::Float> ::nanograd::Module<T> for Lm<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params("wte", &self.wte, f);
        f("wpe", &self.wpe);
        ::nanograd::module::visit_child_params("h", &self.h, f);
        ::nanograd::module::visit_child_params("lm_head", &self.lm_head, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params_mut("wte", &mut self.wte, f);
        f("wpe", &mut self.wpe);
        ::nanograd::module::visit_child_params_mut("h", &mut self.h, f);
        ::nanograd::module::visit_child_params_mut("lm_head", &mut self.lm_head, f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nanograd::Tensor<T>)) {
        ::nanograd::module::visit_child_buffers("wte", &self.wte, f);
        ::nanograd::module::visit_child_buffers("h", &self.h, f);
        ::nanograd::module::visit_child_buffers("lm_head", &self.lm_head, f);
    }
    fn visit_buffers_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut ::nanograd::Tensor<T>),
    ) {
        ::nanograd::module::visit_child_buffers_mut("wte", &mut self.wte, f);
        ::nanograd::module::visit_child_buffers_mut("h", &mut self.h, f);
        ::nanograd::module::visit_child_buffers_mut("lm_head", &mut self.lm_head, f);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.__training = training;
        ::nanograd::Module::<T>::set_training_mode(&mut self.wte, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.h, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.lm_head, training);
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
                name: ::nanograd::__private::String::from("wte"),
                kind: ::nanograd::__private::String::from("Embedding"),
                output: ::nanograd::__private::String::from("[B, 8, 16]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("wte", &self.wte, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("wpe"),
                kind: ::nanograd::__private::String::from("Param"),
                output: ::nanograd::__private::String::from("[8, 16]"),
                params: self.wpe.len(),
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("h"),
                kind: ::nanograd::__private::String::from("[Block; 2]"),
                output: ::nanograd::__private::String::from("[B, 8, 16]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("h", &self.h, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("lm_head"),
                kind: ::nanograd::__private::String::from("Dense"),
                output: ::nanograd::__private::String::from("[B, 8, 11]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("lm_head", &self.lm_head, &mut |_, p| __n += p.len());
                    __n
                },
            },
        ];
        let mut __buffers = 0;
        ::nanograd::Module::<T>::visit_buffers(self, &mut |_, b| __buffers += b.len());
        ::nanograd::module::layer_table("Lm", "[B, 8, 11]", &__rows, __buffers)
    }
}
#[doc(hidden)]
#[allow(unused_macros)]
macro_rules! __nanograd_layer_Lm {
    ($($tt:tt)*) => {
        ::nanograd::model! { @ layer Lm no_forward; $($tt)* }
    };
}
///`Lm` with int8 dense and convolution weights (one scale per output channel), those of the models it uses as layers included, made by [`Lm::quantize_int8`] or loaded by `LmInt8::load_safetensors`. Activations entering those layers are quantized on every call, one scale per row (per image for a convolution); every other op runs in f32. Same methods as `Lm`'s fns, on f32 inputs and outputs.
#[derive(Clone, Debug)]
pub struct LmInt8 {
    __float: Lm<f32>,
    __q: ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
}
impl<T: ::nanograd::Float> Lm<T> {
    ///This model for int8 inference: dense and convolution weights quantized per output channel (symmetric, `s = max|w| / 127`), those of the models used as layers too, batch norms that follow a convolution folded into it, everything else kept in f32. Errors if a weight is not finite.
    #[allow(dead_code)]
    pub fn quantize_int8(&self) -> ::nanograd::Result<LmInt8> {
        let mut __f = Lm::<
            f32,
        >::new(
            &mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(
                0,
            ),
        );
        ::nanograd::quant::copy_to_f32(self, &mut __f)?;
        ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
        let mut __q = ::nanograd::__private::Vec::with_capacity(
            <Lm<f32>>::__INT8_LAYERS,
        );
        __f.__int8_quantize(&mut __q)?;
        Ok(LmInt8 { __float: __f, __q })
    }
}
#[allow(dead_code)]
impl Lm<f32> {
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
    pub fn __int8_forward_into(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        idx: &[[u32; 8usize]],
        out: &mut [[[f32; 11usize]; 8usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let __b = idx.len();
        let __x0: &[u32] = idx.as_flattened();
        let (__ws, __rng) = ws
            .split(
                __b * 840usize + 20usize + <Block<f32>>::__int8_layer_ws_len(__b)
                    + <Block<f32>>::__int8_layer_ws_len(__b),
            );
        let (__ws, __qws) = __ws.split_at_mut(__b * 800usize + 20usize);
        let (__v2, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v4, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub5, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub6, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v8, __ws) = __ws.split_at_mut(__b * 88usize);
        let _ = __ws;
        let (__qs8, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qsub5, __qws) = __qws
            .split_at_mut(<Block<f32>>::__int8_layer_ws_len(__b));
        let (__qsub6, __qws) = __qws
            .split_at_mut(<Block<f32>>::__int8_layer_ws_len(__b));
        let _ = __qws;
        ::nanograd::ops::embedding(
            __x0,
            self.wte.weight.value(),
            11usize,
            16usize,
            &mut *__v2,
        )?;
        ::nanograd::ops::add(&*__v2, self.wpe.value(), &mut *__v4)?;
        self.h[0usize]
            .__layer_forward_int8(
                &__q[1usize
                    + <Block<f32>>::__INT8_LAYERS
                        * 0usize..][..<Block<f32>>::__INT8_LAYERS],
                __b,
                &*__v4,
                &mut *__v5,
                &mut *__qsub5,
                &mut *__rng,
                &mut [],
            )?;
        self.h[1usize]
            .__layer_forward_int8(
                &__q[1usize
                    + <Block<f32>>::__INT8_LAYERS
                        * 1usize..][..<Block<f32>>::__INT8_LAYERS],
                __b,
                &*__v5,
                &mut *__v6,
                &mut *__qsub6,
                &mut *__rng,
                &mut [],
            )?;
        ::nanograd::quant::dense_int8(
            &*__v6,
            &__q[0usize],
            None,
            __b * 8usize,
            16usize,
            11usize,
            &mut *__v8,
            &mut *__qs8,
        )?;
        ::nanograd::check_batch(
            concat!("LmInt8", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut().as_flattened_mut()).copy_from_slice(&*__v8);
        Ok(())
    }
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
    pub fn __int8_loss_into(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        idx: &[[u32; 8usize]],
        t: &[[u32; 8usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<f32> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let __b = idx.len();
        ::nanograd::check_batch("LmInt8::loss", "t", __b, t.len())?;
        let __x0: &[u32] = idx.as_flattened();
        let __x1: &[u32] = t.as_flattened();
        let (__ws, __rng) = ws
            .split(
                __b * 840usize + 21usize + <Block<f32>>::__int8_layer_ws_len(__b)
                    + <Block<f32>>::__int8_layer_ws_len(__b),
            );
        let (__ws, __qws) = __ws.split_at_mut(__b * 800usize + 21usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v5, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub6, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__sub7, __ws) = __ws.split_at_mut(__b * 100usize + 10usize);
        let (__v9, __ws) = __ws.split_at_mut(__b * 88usize);
        let (__v10, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        let (__qs9, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qsub6, __qws) = __qws
            .split_at_mut(<Block<f32>>::__int8_layer_ws_len(__b));
        let (__qsub7, __qws) = __qws
            .split_at_mut(<Block<f32>>::__int8_layer_ws_len(__b));
        let _ = __qws;
        ::nanograd::ops::embedding(
            __x0,
            self.wte.weight.value(),
            11usize,
            16usize,
            &mut *__v3,
        )?;
        ::nanograd::ops::add(&*__v3, self.wpe.value(), &mut *__v5)?;
        self.h[0usize]
            .__layer_forward_int8(
                &__q[1usize
                    + <Block<f32>>::__INT8_LAYERS
                        * 0usize..][..<Block<f32>>::__INT8_LAYERS],
                __b,
                &*__v5,
                &mut *__v6,
                &mut *__qsub6,
                &mut *__rng,
                &mut [],
            )?;
        self.h[1usize]
            .__layer_forward_int8(
                &__q[1usize
                    + <Block<f32>>::__INT8_LAYERS
                        * 1usize..][..<Block<f32>>::__INT8_LAYERS],
                __b,
                &*__v6,
                &mut *__v7,
                &mut *__qsub7,
                &mut *__rng,
                &mut [],
            )?;
        ::nanograd::quant::dense_int8(
            &*__v7,
            &__q[0usize],
            None,
            __b * 8usize,
            16usize,
            11usize,
            &mut *__v9,
            &mut *__qs9,
        )?;
        __v10[0] = ::nanograd::ops::softmax_cross_entropy_indices(
            &*__v9,
            __x1,
            11usize,
        )?;
        Ok((&*__v10)[0])
    }
    /// The int8 layers of this model and of the models it uses as layers.
    #[doc(hidden)]
    pub const __INT8_LAYERS: usize = 1usize + <Block<f32>>::__INT8_LAYERS * 2usize;
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
                    self.lm_head.weight.value(),
                    &[11usize, 16usize],
                )?,
            );
        for __e in self.h.iter() {
            __e.__int8_quantize(__out)?;
        }
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
                    "lm_head.weight",
                    "lm_head.bias",
                    &[11usize, 16usize],
                    None,
                ),
            );
        for __i in 0..2usize {
            <Block<
                f32,
            >>::__int8_names(
                &::nanograd::quant::sub_prefix(__prefix, "h", Some(__i)),
                __out,
            );
        }
    }
    /// The tensors that stay f32 and are not saved, under `__prefix`: the float
    /// weights replaced by int8 ones, and the batch norms folded into convolutions.
    #[doc(hidden)]
    pub fn __int8_unread(
        __prefix: &str,
        __out: &mut ::nanograd::__private::Vec<::nanograd::__private::String>,
    ) {
        ::nanograd::quant::push_prefixed(__out, __prefix, &["lm_head.weight"]);
        for __i in 0..2usize {
            <Block<
                f32,
            >>::__int8_unread(
                &::nanograd::quant::sub_prefix(__prefix, "h", Some(__i)),
                __out,
            );
        }
    }
}
#[allow(dead_code)]
impl LmInt8 {
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        idx: &[[u32; 8usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[[f32; 11usize]; 8usize]>> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let mut __out = ::nanograd::__private::Vec::with_capacity(idx.len());
        __out.resize(idx.len(), [[T::zero(); 11usize]; 8usize]);
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.forward_into(idx, &mut __out, __ws) },
        )?;
        Ok(__out)
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(clippy::all)]
    pub fn forward_into(
        &self,
        idx: &[[u32; 8usize]],
        out: &mut [[[f32; 11usize]; 8usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        self.__float.__int8_forward_into(&self.__q, idx, out, ws)
    }
    #[allow(clippy::all)]
    pub fn loss(
        &self,
        idx: &[[u32; 8usize]],
        t: &[[u32; 8usize]],
    ) -> ::nanograd::Result<f32> {
        ::nanograd::Workspace::with_thread_cache(
            self as *const Self as *const (),
            |__ws| { self.loss_into(idx, t, __ws) },
        )
    }
    ///Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.
    #[allow(clippy::all)]
    pub fn loss_into(
        &self,
        idx: &[[u32; 8usize]],
        t: &[[u32; 8usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<f32> {
        self.__float.__int8_loss_into(&self.__q, idx, t, ws)
    }
    fn __names() -> ::nanograd::__private::Vec<::nanograd::quant::Int8Name> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Lm<f32>>::__int8_names("", &mut __out);
        __out
    }
    fn __unread() -> ::nanograd::__private::Vec<::nanograd::__private::String> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Lm<f32>>::__int8_unread("", &mut __out);
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
    pub fn float_part(&self) -> &Lm<f32> {
        &self.__float
    }
}
impl ::nanograd::quant::QuantizedSafetensors for LmInt8 {
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
        let mut __f = Lm::<
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
        ::nanograd::check_len("LmInt8", "int8 layers", __names.len(), __q.len())?;
        Ok(Self { __float: __f, __q })
    }
}
