#[allow(dead_code, unused_mut, unused_variables, clippy::all)]
pub fn energy<T: ::nanograd::Float>(x: &[T; 3usize], y: &[T; 3usize]) -> T {
    let __run = || -> ::nanograd::Result<T> {
        let __x0: &[T] = &x[..];
        let __x1: &[T] = &y[..];
        let mut __buf = [T::zero(); 4usize];
        let __ws: &mut [T] = &mut __buf[..];
        let (__v2, __ws) = __ws.split_at_mut(3usize);
        let (__v3, __ws) = __ws.split_at_mut(1usize);
        let _ = __ws;
        ::nanograd::ops::add(__x0, __x1, &mut *__v2)?;
        __v3[0] = ::nanograd::ops::dot(&*__v2, &*__v2)?;
        Ok((&*__v3)[0])
    };
    __run().expect("nanograd: a kernel rejected shapes that model! checked")
}
///The vector-Jacobian product of [`energy`]: its value, and the gradient of `<upstream, energy(..)>` with respect to each input.
#[allow(dead_code, unused_mut, unused_variables, clippy::all)]
pub fn energy_vjp<T: ::nanograd::Float>(
    x: &[T; 3usize],
    y: &[T; 3usize],
    upstream: &T,
) -> (T, [T; 3usize], [T; 3usize]) {
    let mut __gx0_arr = [T::zero(); 3usize];
    let mut __gx1_arr = [T::zero(); 3usize];
    let mut __run = || -> ::nanograd::Result<T> {
        let __x0: &[T] = &x[..];
        let __x1: &[T] = &y[..];
        let __gx0: &mut [T] = &mut __gx0_arr[..];
        let __gx1: &mut [T] = &mut __gx1_arr[..];
        let mut __buf = [T::zero(); 11usize];
        let __ws: &mut [T] = &mut __buf[..];
        let (__v2, __ws) = __ws.split_at_mut(3usize);
        let (__v3, __ws) = __ws.split_at_mut(1usize);
        let (__g2, __ws) = __ws.split_at_mut(3usize);
        let (__g3, __ws) = __ws.split_at_mut(1usize);
        let (__t1_3, __ws) = __ws.split_at_mut(3usize);
        let _ = __ws;
        ::nanograd::ops::add(__x0, __x1, &mut *__v2)?;
        __v3[0] = ::nanograd::ops::dot(&*__v2, &*__v2)?;
        let __result = (&*__v3)[0];
        __g2.fill(T::zero());
        __t1_3.fill(T::zero());
        (&mut *__g3).copy_from_slice(&[*upstream][..]);
        {
            ::nanograd::ops::dot_backward(
                &*__v2,
                &*__v2,
                __g3[0],
                Some(&mut *__g2),
                Some(&mut *__t1_3),
            )?;
            for (__a, __d) in (&mut *__g2).iter_mut().zip(__t1_3.iter()) {
                *__a += *__d;
            }
        }
        {
            ::nanograd::ops::add_backward(&*__g2, Some(&mut *__gx0), Some(&mut *__gx1))?;
        }
        Ok(__result)
    };
    let __value = __run()
        .expect("nanograd: a kernel rejected shapes that model! checked");
    drop(__run);
    (__value, __gx0_arr, __gx1_arr)
}
///The value of [`energy`] and its gradient with respect to each input.
#[allow(dead_code, clippy::all)]
pub fn energy_grad<T: ::nanograd::Float>(
    x: &[T; 3usize],
    y: &[T; 3usize],
) -> (T, [T; 3usize], [T; 3usize]) {
    energy_vjp(x, y, &T::one())
}
