const T: usize = 8usize;
const C: usize = 16usize;
#[derive(Clone, Debug)]
pub struct Block<T: ::nanograd::Float = f32> {
    pub ln_1: ::nanograd::layers::LayerNorm<T>,
    pub attn: ::nanograd::layers::MultiHeadAttention<T>,
    pub ln_2: ::nanograd::layers::LayerNorm<T>,
    pub fc: ::nanograd::layers::Dense<T>,
    pub proj: ::nanograd::layers::Dense<T>,
    __training: bool,
    __workspace: ::nanograd::Workspace<T>,
}
impl<T: ::nanograd::Float> Block<T> {
    ///A new model with freshly initialised parameters (Xavier for dense layers, He for convolutions), in training mode.
    #[allow(dead_code)]
    pub fn new(rng: &mut impl ::nanograd::rand::Rng) -> Self {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        Self {
            ln_1: {
                let mut __l = ::nanograd::layers::LayerNorm::new(16usize)
                    .expect("nanograd: model! validated the layer `ln_1`");
                __l.set_eps(0.00001f64)
                    .expect("nanograd: model! validated the layer `ln_1`");
                __l
            },
            attn: ::nanograd::layers::MultiHeadAttention::new(16usize, 2usize, true, rng)
                .expect("nanograd: model! validated the layer `attn`"),
            ln_2: {
                let mut __l = ::nanograd::layers::LayerNorm::new(16usize)
                    .expect("nanograd: model! validated the layer `ln_2`");
                __l.set_eps(0.00001f64)
                    .expect("nanograd: model! validated the layer `ln_2`");
                __l
            },
            fc: ::nanograd::layers::Dense::new(16usize, 64usize, rng)
                .expect("nanograd: model! validated the layer `fc`"),
            proj: ::nanograd::layers::Dense::new(64usize, 16usize, rng)
                .expect("nanograd: model! validated the layer `proj`"),
            __training: true,
            __workspace: ::nanograd::Workspace::with_seed(rng.next_u64()),
        }
    }
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        x: &[[[T; 16usize]; 8usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[[T; 16usize]; 8usize]>> {
        let mut __out = ::nanograd::__private::Vec::with_capacity(x.len());
        __out.resize(x.len(), [[T::zero(); 16usize]; 8usize]);
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
        x: &[[[T; 16usize]; 8usize]],
        out: &mut [[[T; 16usize]; 8usize]],
        ws: &mut ::nanograd::Workspace<T>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        let __b = x.len();
        let __x0: &[T] = x.as_flattened().as_flattened();
        let (__ws, __rng) = ws.split(__b * 2320usize + 648usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__lse7, __ws) = __ws.split_at_mut(__b * 16usize);
        let (__scr7, __ws) = __ws.split_at_mut(648usize);
        let (__v10, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v11, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v22, __ws) = __ws.split_at_mut(__b * 128usize);
        let _ = __ws;
        ::nanograd::ops::layer_norm(
            __x0,
            Some(self.ln_1.weight.value()),
            Some(self.ln_1.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v3,
        )?;
        ::nanograd::ops::dense(
            &*__v3,
            self.attn.in_proj_weight.value(),
            Some(self.attn.in_proj_bias.value()),
            __b * 8usize,
            16usize,
            48usize,
            &mut *__v6,
        )?;
        ::nanograd::ops::mha_attention(
            &*__v6,
            __b,
            8usize,
            16usize,
            2usize,
            true,
            &mut *__v7,
            &mut *__lse7,
            &mut *__scr7,
        )?;
        ::nanograd::ops::dense(
            &*__v7,
            self.attn.out_proj.weight.value(),
            Some(self.attn.out_proj.bias.value()),
            __b * 8usize,
            16usize,
            16usize,
            &mut *__v10,
        )?;
        ::nanograd::ops::add(__x0, &*__v10, &mut *__v11)?;
        ::nanograd::ops::layer_norm(
            &*__v11,
            Some(self.ln_2.weight.value()),
            Some(self.ln_2.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v14,
        )?;
        ::nanograd::ops::dense(
            &*__v14,
            self.fc.weight.value(),
            Some(self.fc.bias.value()),
            __b * 8usize,
            16usize,
            64usize,
            &mut *__v17,
        )?;
        ::nanograd::ops::gelu(&*__v17, &mut *__v18)?;
        ::nanograd::ops::dense(
            &*__v18,
            self.proj.weight.value(),
            Some(self.proj.bias.value()),
            __b * 8usize,
            64usize,
            16usize,
            &mut *__v21,
        )?;
        ::nanograd::ops::add(&*__v11, &*__v21, &mut *__v22)?;
        ::nanograd::check_batch(
            concat!("Block", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut().as_flattened_mut()).copy_from_slice(&*__v22);
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
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__lse7, __ws) = __ws.split_at_mut(__b * 16usize);
        let (__scr7, __ws) = __ws.split_at_mut(648usize);
        let (__v10, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v11, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v22, __ws) = __ws.split_at_mut(__b * 128usize);
        let _ = __ws;
        ::nanograd::ops::layer_norm(
            __x0,
            Some(self.ln_1.weight.value()),
            Some(self.ln_1.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v3,
        )?;
        ::nanograd::ops::dense(
            &*__v3,
            self.attn.in_proj_weight.value(),
            Some(self.attn.in_proj_bias.value()),
            __b * 8usize,
            16usize,
            48usize,
            &mut *__v6,
        )?;
        ::nanograd::ops::mha_attention(
            &*__v6,
            __b,
            8usize,
            16usize,
            2usize,
            true,
            &mut *__v7,
            &mut *__lse7,
            &mut *__scr7,
        )?;
        ::nanograd::ops::dense(
            &*__v7,
            self.attn.out_proj.weight.value(),
            Some(self.attn.out_proj.bias.value()),
            __b * 8usize,
            16usize,
            16usize,
            &mut *__v10,
        )?;
        ::nanograd::ops::add(__x0, &*__v10, &mut *__v11)?;
        ::nanograd::ops::layer_norm(
            &*__v11,
            Some(self.ln_2.weight.value()),
            Some(self.ln_2.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v14,
        )?;
        ::nanograd::ops::dense(
            &*__v14,
            self.fc.weight.value(),
            Some(self.fc.bias.value()),
            __b * 8usize,
            16usize,
            64usize,
            &mut *__v17,
        )?;
        ::nanograd::ops::gelu(&*__v17, &mut *__v18)?;
        ::nanograd::ops::dense(
            &*__v18,
            self.proj.weight.value(),
            Some(self.proj.bias.value()),
            __b * 8usize,
            64usize,
            16usize,
            &mut *__v21,
        )?;
        ::nanograd::ops::add(&*__v11, &*__v21, &mut *__v22)?;
        ::nanograd::check_len(stringify!(Block), "output", __y.len(), (&*__v22).len())?;
        __y.copy_from_slice(&*__v22);
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
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__lse7, __ws) = __ws.split_at_mut(__b * 16usize);
        let (__scr7, __ws) = __ws.split_at_mut(648usize);
        let (__v10, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v11, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v22, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__g18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__g21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g22, __ws) = __ws.split_at_mut(__b * 128usize);
        let _ = __ws;
        ::nanograd::ops::layer_norm(
            __x0,
            Some(self.ln_1.weight.value()),
            Some(self.ln_1.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v3,
        )?;
        ::nanograd::ops::dense(
            &*__v3,
            self.attn.in_proj_weight.value(),
            Some(self.attn.in_proj_bias.value()),
            __b * 8usize,
            16usize,
            48usize,
            &mut *__v6,
        )?;
        ::nanograd::ops::mha_attention(
            &*__v6,
            __b,
            8usize,
            16usize,
            2usize,
            true,
            &mut *__v7,
            &mut *__lse7,
            &mut *__scr7,
        )?;
        ::nanograd::ops::dense(
            &*__v7,
            self.attn.out_proj.weight.value(),
            Some(self.attn.out_proj.bias.value()),
            __b * 8usize,
            16usize,
            16usize,
            &mut *__v10,
        )?;
        ::nanograd::ops::add(__x0, &*__v10, &mut *__v11)?;
        ::nanograd::ops::layer_norm(
            &*__v11,
            Some(self.ln_2.weight.value()),
            Some(self.ln_2.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v14,
        )?;
        ::nanograd::ops::dense(
            &*__v14,
            self.fc.weight.value(),
            Some(self.fc.bias.value()),
            __b * 8usize,
            16usize,
            64usize,
            &mut *__v17,
        )?;
        ::nanograd::ops::gelu(&*__v17, &mut *__v18)?;
        ::nanograd::ops::dense(
            &*__v18,
            self.proj.weight.value(),
            Some(self.proj.bias.value()),
            __b * 8usize,
            64usize,
            16usize,
            &mut *__v21,
        )?;
        ::nanograd::ops::add(&*__v11, &*__v21, &mut *__v22)?;
        ::nanograd::check_len(stringify!(Block), "output", __y.len(), (&*__v22).len())?;
        __y.copy_from_slice(&*__v22);
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
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__lse7, __ws) = __ws.split_at_mut(__b * 16usize);
        let (__scr7, __ws) = __ws.split_at_mut(648usize);
        let (__v10, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v11, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v22, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__g7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__g18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__g21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__g22, __ws) = __ws.split_at_mut(__b * 128usize);
        let _ = __ws;
        let (__dx_scratch, __ws) = __ws.split_at_mut(__x0.len());
        let __gx0: &mut [T] = match __dx {
            Some(__d) => __d,
            None => __dx_scratch,
        };
        __g21.fill(T::zero());
        (&mut *__g22).copy_from_slice(__dy);
        {
            ::nanograd::ops::add_backward(&*__g22, None, Some(&mut *__g21))?;
        }
        {
            let (__pv19, __pg19) = self.proj.weight.value_and_grad_mut();
            let (__pv20, __pg20) = self.proj.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v18,
                __pv19,
                &*__g21,
                __b * 8usize,
                64usize,
                16usize,
                Some(&mut *__g18),
                Some(&mut *__pg19),
                Some(&mut *__pg20),
            )?;
        }
        {
            ::nanograd::ops::gelu_backward_overwrite(
                &*__v17,
                &*__v18,
                &*__g18,
                &mut *__g17,
            )?;
        }
        {
            let (__pv15, __pg15) = self.fc.weight.value_and_grad_mut();
            let (__pv16, __pg16) = self.fc.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v14,
                __pv15,
                &*__g17,
                __b * 8usize,
                16usize,
                64usize,
                Some(&mut *__g14),
                Some(&mut *__pg15),
                Some(&mut *__pg16),
            )?;
        }
        {
            let (__pv12, __pg12) = self.ln_2.weight.value_and_grad_mut();
            let (__pv13, __pg13) = self.ln_2.bias.value_and_grad_mut();
            ::nanograd::ops::layer_norm_backward(
                &*__v11,
                Some(__pv12),
                &*__g14,
                16usize,
                T::from_f64(0.00001f64),
                Some(&mut *__g22),
                Some(&mut *__pg12),
                Some(&mut *__pg13),
            )?;
        }
        {
            ::nanograd::ops::add_backward(&*__g22, Some(&mut *__gx0), None)?;
        }
        {
            let (__pv8, __pg8) = self.attn.out_proj.weight.value_and_grad_mut();
            let (__pv9, __pg9) = self.attn.out_proj.bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v7,
                __pv8,
                &*__g22,
                __b * 8usize,
                16usize,
                16usize,
                Some(&mut *__g7),
                Some(&mut *__pg8),
                Some(&mut *__pg9),
            )?;
        }
        {
            ::nanograd::ops::mha_attention_backward_overwrite(
                &*__v6,
                &*__v7,
                &*__lse7,
                &*__g7,
                __b,
                8usize,
                16usize,
                2usize,
                true,
                &mut *__g6,
                &mut *__scr7,
            )?;
        }
        {
            let (__pv4, __pg4) = self.attn.in_proj_weight.value_and_grad_mut();
            let (__pv5, __pg5) = self.attn.in_proj_bias.value_and_grad_mut();
            ::nanograd::ops::dense_backward_overwrite(
                &*__v3,
                __pv4,
                &*__g6,
                __b * 8usize,
                16usize,
                48usize,
                Some(&mut *__g3),
                Some(&mut *__pg4),
                Some(&mut *__pg5),
            )?;
        }
        {
            let (__pv1, __pg1) = self.ln_1.weight.value_and_grad_mut();
            let (__pv2, __pg2) = self.ln_1.bias.value_and_grad_mut();
            ::nanograd::ops::layer_norm_backward(
                __x0,
                Some(__pv1),
                &*__g3,
                16usize,
                T::from_f64(0.00001f64),
                Some(&mut *__gx0),
                Some(&mut *__pg1),
                Some(&mut *__pg2),
            )?;
        }
        Ok(())
    }
}
impl<T: ::nanograd::Float> ::nanograd::Module<T> for Block<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params("ln_1", &self.ln_1, f);
        ::nanograd::module::visit_child_params("attn", &self.attn, f);
        ::nanograd::module::visit_child_params("ln_2", &self.ln_2, f);
        ::nanograd::module::visit_child_params("fc", &self.fc, f);
        ::nanograd::module::visit_child_params("proj", &self.proj, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Param<T>)) {
        ::nanograd::module::visit_child_params_mut("ln_1", &mut self.ln_1, f);
        ::nanograd::module::visit_child_params_mut("attn", &mut self.attn, f);
        ::nanograd::module::visit_child_params_mut("ln_2", &mut self.ln_2, f);
        ::nanograd::module::visit_child_params_mut("fc", &mut self.fc, f);
        ::nanograd::module::visit_child_params_mut("proj", &mut self.proj, f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nanograd::Tensor<T>)) {
        ::nanograd::module::visit_child_buffers("ln_1", &self.ln_1, f);
        ::nanograd::module::visit_child_buffers("attn", &self.attn, f);
        ::nanograd::module::visit_child_buffers("ln_2", &self.ln_2, f);
        ::nanograd::module::visit_child_buffers("fc", &self.fc, f);
        ::nanograd::module::visit_child_buffers("proj", &self.proj, f);
    }
    fn visit_buffers_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut ::nanograd::Tensor<T>),
    ) {
        ::nanograd::module::visit_child_buffers_mut("ln_1", &mut self.ln_1, f);
        ::nanograd::module::visit_child_buffers_mut("attn", &mut self.attn, f);
        ::nanograd::module::visit_child_buffers_mut("ln_2", &mut self.ln_2, f);
        ::nanograd::module::visit_child_buffers_mut("fc", &mut self.fc, f);
        ::nanograd::module::visit_child_buffers_mut("proj", &mut self.proj, f);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.__training = training;
        ::nanograd::Module::<T>::set_training_mode(&mut self.ln_1, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.attn, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.ln_2, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.fc, training);
        ::nanograd::Module::<T>::set_training_mode(&mut self.proj, training);
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
                name: ::nanograd::__private::String::from("ln_1"),
                kind: ::nanograd::__private::String::from("LayerNorm"),
                output: ::nanograd::__private::String::from("[B, 8, 16]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("ln_1", &self.ln_1, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("attn"),
                kind: ::nanograd::__private::String::from("MultiHeadAttention"),
                output: ::nanograd::__private::String::from("[B, 8, 16]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("attn", &self.attn, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("ln_2"),
                kind: ::nanograd::__private::String::from("LayerNorm"),
                output: ::nanograd::__private::String::from("[B, 8, 16]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("ln_2", &self.ln_2, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("fc"),
                kind: ::nanograd::__private::String::from("Dense"),
                output: ::nanograd::__private::String::from("[B, 8, 64]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("fc", &self.fc, &mut |_, p| __n += p.len());
                    __n
                },
            },
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from("proj"),
                kind: ::nanograd::__private::String::from("Dense"),
                output: ::nanograd::__private::String::from("[B, 8, 16]"),
                params: {
                    let mut __n = 0;
                    ::nanograd::module::visit_child_params::<
                        T,
                        _,
                    >("proj", &self.proj, &mut |_, p| __n += p.len());
                    __n
                },
            },
        ];
        let mut __buffers = 0;
        ::nanograd::Module::<T>::visit_buffers(self, &mut |_, b| __buffers += b.len());
        ::nanograd::module::layer_table("Block", "[B, 8, 16]", &__rows, __buffers)
    }
}
#[doc(hidden)]
#[allow(unused_macros)]
macro_rules! __nanograd_layer_Block {
    ($($tt:tt)*) => {
        ::nanograd::model! { @ layer Block[B, 8, 16] -> [B, 8, 16] (4496, 648, 0);
        $($tt)* }
    };
}
///`Block` with int8 dense and convolution weights (one scale per output channel), those of the models it uses as layers included, made by [`Block::quantize_int8`] or loaded by `BlockInt8::load_safetensors`. Activations entering those layers are quantized on every call, one scale per row (per image for a convolution); every other op runs in f32. Same methods as `Block`'s fns, on f32 inputs and outputs.
#[derive(Clone, Debug)]
pub struct BlockInt8 {
    __float: Block<f32>,
    __q: ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
}
impl<T: ::nanograd::Float> Block<T> {
    ///This model for int8 inference: dense and convolution weights quantized per output channel (symmetric, `s = max|w| / 127`), those of the models used as layers too, batch norms that follow a convolution folded into it, everything else kept in f32. Errors if a weight is not finite.
    #[allow(dead_code)]
    pub fn quantize_int8(&self) -> ::nanograd::Result<BlockInt8> {
        let mut __f = Block::<
            f32,
        >::new(
            &mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(
                0,
            ),
        );
        ::nanograd::quant::copy_to_f32(self, &mut __f)?;
        ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
        let mut __q = ::nanograd::__private::Vec::with_capacity(
            <Block<f32>>::__INT8_LAYERS,
        );
        __f.__int8_quantize(&mut __q)?;
        Ok(BlockInt8 { __float: __f, __q })
    }
}
#[allow(dead_code)]
impl Block<f32> {
    #[doc(hidden)]
    #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
    pub fn __int8_forward_into(
        &self,
        __q: &[::nanograd::quant::QuantizedLayer],
        x: &[[[f32; 16usize]; 8usize]],
        out: &mut [[[f32; 16usize]; 8usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let __b = x.len();
        let __x0: &[T] = x.as_flattened().as_flattened();
        let (__ws, __rng) = ws.split(__b * 2576usize + 648usize);
        let (__ws, __qws) = __ws.split_at_mut(__b * 2320usize + 648usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__lse7, __ws) = __ws.split_at_mut(__b * 16usize);
        let (__scr7, __ws) = __ws.split_at_mut(648usize);
        let (__v10, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v11, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v22, __ws) = __ws.split_at_mut(__b * 128usize);
        let _ = __ws;
        let (__qs6, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qs10, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qs17, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qs21, __qws) = __qws.split_at_mut(__b * 136usize);
        let _ = __qws;
        ::nanograd::ops::layer_norm(
            __x0,
            Some(self.ln_1.weight.value()),
            Some(self.ln_1.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v3,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v3,
            &__q[0usize],
            Some(self.attn.in_proj_bias.value()),
            __b * 8usize,
            16usize,
            48usize,
            &mut *__v6,
            &mut *__qs6,
        )?;
        ::nanograd::ops::mha_attention(
            &*__v6,
            __b,
            8usize,
            16usize,
            2usize,
            true,
            &mut *__v7,
            &mut *__lse7,
            &mut *__scr7,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v7,
            &__q[1usize],
            Some(self.attn.out_proj.bias.value()),
            __b * 8usize,
            16usize,
            16usize,
            &mut *__v10,
            &mut *__qs10,
        )?;
        ::nanograd::ops::add(__x0, &*__v10, &mut *__v11)?;
        ::nanograd::ops::layer_norm(
            &*__v11,
            Some(self.ln_2.weight.value()),
            Some(self.ln_2.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v14,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v14,
            &__q[2usize],
            Some(self.fc.bias.value()),
            __b * 8usize,
            16usize,
            64usize,
            &mut *__v17,
            &mut *__qs17,
        )?;
        ::nanograd::ops::gelu(&*__v17, &mut *__v18)?;
        ::nanograd::quant::dense_int8(
            &*__v18,
            &__q[3usize],
            Some(self.proj.bias.value()),
            __b * 8usize,
            64usize,
            16usize,
            &mut *__v21,
            &mut *__qs21,
        )?;
        ::nanograd::ops::add(&*__v11, &*__v21, &mut *__v22)?;
        ::nanograd::check_batch(
            concat!("BlockInt8", "::", stringify!(forward)),
            "out",
            __b,
            out.len(),
        )?;
        (out.as_flattened_mut().as_flattened_mut()).copy_from_slice(&*__v22);
        Ok(())
    }
    /// The int8 layers of this model and of the models it uses as layers.
    #[doc(hidden)]
    pub const __INT8_LAYERS: usize = 4usize;
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
                    self.attn.in_proj_weight.value(),
                    &[48usize, 16usize],
                )?,
            );
        __out
            .push(
                ::nanograd::quant::QuantizedLayer::new(
                    self.attn.out_proj.weight.value(),
                    &[16usize, 16usize],
                )?,
            );
        __out
            .push(
                ::nanograd::quant::QuantizedLayer::new(
                    self.fc.weight.value(),
                    &[64usize, 16usize],
                )?,
            );
        __out
            .push(
                ::nanograd::quant::QuantizedLayer::new(
                    self.proj.weight.value(),
                    &[16usize, 64usize],
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
                    "attn.in_proj_weight",
                    "attn.in_proj_weight_bias",
                    &[48usize, 16usize],
                    None,
                ),
            );
        __out
            .push(
                ::nanograd::quant::Int8Name::new(
                    __prefix,
                    "attn.out_proj.weight",
                    "attn.out_proj.bias",
                    &[16usize, 16usize],
                    None,
                ),
            );
        __out
            .push(
                ::nanograd::quant::Int8Name::new(
                    __prefix,
                    "fc.weight",
                    "fc.bias",
                    &[64usize, 16usize],
                    None,
                ),
            );
        __out
            .push(
                ::nanograd::quant::Int8Name::new(
                    __prefix,
                    "proj.weight",
                    "proj.bias",
                    &[16usize, 64usize],
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
            &["attn.in_proj_weight", "attn.out_proj.weight", "fc.weight", "proj.weight"],
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
            stringify!(Block),
            "workspace",
            Self::__int8_layer_ws_len(__b),
            __ws.len(),
        )?;
        let (__ws, __qws) = __ws.split_at_mut(__b * 2320usize + 648usize);
        let (__v3, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v6, __ws) = __ws.split_at_mut(__b * 384usize);
        let (__v7, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__lse7, __ws) = __ws.split_at_mut(__b * 16usize);
        let (__scr7, __ws) = __ws.split_at_mut(648usize);
        let (__v10, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v11, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v14, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v17, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v18, __ws) = __ws.split_at_mut(__b * 512usize);
        let (__v21, __ws) = __ws.split_at_mut(__b * 128usize);
        let (__v22, __ws) = __ws.split_at_mut(__b * 128usize);
        let _ = __ws;
        let (__qs6, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qs10, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qs17, __qws) = __qws.split_at_mut(__b * 40usize);
        let (__qs21, __qws) = __qws.split_at_mut(__b * 136usize);
        let _ = __qws;
        ::nanograd::ops::layer_norm(
            __x0,
            Some(self.ln_1.weight.value()),
            Some(self.ln_1.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v3,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v3,
            &__q[0usize],
            Some(self.attn.in_proj_bias.value()),
            __b * 8usize,
            16usize,
            48usize,
            &mut *__v6,
            &mut *__qs6,
        )?;
        ::nanograd::ops::mha_attention(
            &*__v6,
            __b,
            8usize,
            16usize,
            2usize,
            true,
            &mut *__v7,
            &mut *__lse7,
            &mut *__scr7,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v7,
            &__q[1usize],
            Some(self.attn.out_proj.bias.value()),
            __b * 8usize,
            16usize,
            16usize,
            &mut *__v10,
            &mut *__qs10,
        )?;
        ::nanograd::ops::add(__x0, &*__v10, &mut *__v11)?;
        ::nanograd::ops::layer_norm(
            &*__v11,
            Some(self.ln_2.weight.value()),
            Some(self.ln_2.bias.value()),
            16usize,
            T::from_f64(0.00001f64),
            &mut *__v14,
        )?;
        ::nanograd::quant::dense_int8(
            &*__v14,
            &__q[2usize],
            Some(self.fc.bias.value()),
            __b * 8usize,
            16usize,
            64usize,
            &mut *__v17,
            &mut *__qs17,
        )?;
        ::nanograd::ops::gelu(&*__v17, &mut *__v18)?;
        ::nanograd::quant::dense_int8(
            &*__v18,
            &__q[3usize],
            Some(self.proj.bias.value()),
            __b * 8usize,
            64usize,
            16usize,
            &mut *__v21,
            &mut *__qs21,
        )?;
        ::nanograd::ops::add(&*__v11, &*__v21, &mut *__v22)?;
        ::nanograd::check_len(stringify!(Block), "output", __y.len(), (&*__v22).len())?;
        __y.copy_from_slice(&*__v22);
        Ok(())
    }
    /// The workspace of `__layer_forward_int8` for `__b` rows, in f32 elements.
    #[doc(hidden)]
    #[allow(unused_variables, clippy::all)]
    pub const fn __int8_layer_ws_len(__b: usize) -> usize {
        __b * 2576usize + 648usize
    }
}
#[allow(dead_code)]
impl BlockInt8 {
    #[allow(clippy::all)]
    pub fn forward(
        &self,
        x: &[[[f32; 16usize]; 8usize]],
    ) -> ::nanograd::Result<::nanograd::__private::Vec<[[f32; 16usize]; 8usize]>> {
        #[allow(unused_imports)]
        use ::nanograd::Float as _;
        type T = f32;
        let mut __out = ::nanograd::__private::Vec::with_capacity(x.len());
        __out.resize(x.len(), [[T::zero(); 16usize]; 8usize]);
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
        x: &[[[f32; 16usize]; 8usize]],
        out: &mut [[[f32; 16usize]; 8usize]],
        ws: &mut ::nanograd::Workspace<f32>,
    ) -> ::nanograd::Result<()> {
        self.__float.__int8_forward_into(&self.__q, x, out, ws)
    }
    fn __names() -> ::nanograd::__private::Vec<::nanograd::quant::Int8Name> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Block<f32>>::__int8_names("", &mut __out);
        __out
    }
    fn __unread() -> ::nanograd::__private::Vec<::nanograd::__private::String> {
        let mut __out = ::nanograd::__private::Vec::new();
        <Block<f32>>::__int8_unread("", &mut __out);
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
    pub fn float_part(&self) -> &Block<f32> {
        &self.__float
    }
}
impl ::nanograd::quant::QuantizedSafetensors for BlockInt8 {
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
        let mut __f = Block::<
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
        ::nanograd::check_len("BlockInt8", "int8 layers", __names.len(), __q.len())?;
        Ok(Self { __float: __f, __q })
    }
}
