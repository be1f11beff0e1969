//! The column layout of a convolution's input and its adjoint: `im2col` copies each image
//! `x: [c_in, h, w]` to `cols: [c_in·kh·kw, out_h·out_w]`, row `(c, u, v)` holding the tap
//! `x[c, i·s + u - p, j·s + v - p]` of every output `(i, j)` (0 in the padding); `col2im`
//! adds the columns back onto the input positions they were read from.
//!
//! Two ways, one result:
//!
//! - **Aligned** geometries, whose output is the input divided by the stride exactly
//!   (`out_h·s = h`, `out_w·s = w`: "same" padding, as CNNs use). Split the plane into its
//!   `s²` phase planes `x[c, a·s + qr, b·s + qc]`, each of the output's size; tap `(u, v)`
//!   is then phase plane `((u - p) mod s, (v - p) mod s)` shifted by
//!   `(⌊(u - p)/s⌋, ⌊(v - p)/s⌋)`, so a whole row of the columns is one contiguous copy (one
//!   vectorised add for `col2im`), the entries shifted across a row edge set to 0 after. For
//!   `s = 1` the plane is its own phase plane.
//! - **Any other** geometry: a copy per row of output, strided when `s > 1`.
//!
//! The rows of one image's columns are `ld` elements apart (`ld = n·out_h·out_w` places the
//! image among the columns of a batch `[c_in·kh·kw, n·out_h·out_w]`).

use super::Conv2dGeom;
use crate::simd::{vectorize, Kernel};
use crate::Float;

impl Conv2dGeom {
    /// Whether the output is the input divided by the stride exactly, so that im2col works
    /// on phase planes (see the module's doc comment).
    pub(super) const fn is_aligned(&self) -> bool {
        self.out_h() * self.stride == self.h && self.out_w() * self.stride == self.w
    }

    /// For stride 2 when each of the 4 phase planes is exactly the row of one tap (the tap
    /// `(p + qr, p + qc)` of phase `(qr, qc)`, which the kernel reaches when `p + 1 < kh`
    /// and `p + 1 < kw`): those taps `u·kw + v`, by phase `2·qr + qc`. im2col then splits
    /// the plane straight into these rows and copies the other taps from them; col2im adds
    /// the other taps onto them and merges them.
    pub(super) fn phase_homes(&self) -> Option<[usize; 4]> {
        let (p, kw) = (self.padding, self.kw);
        let fits = self.stride == 2 && p + 1 < self.kh && p + 1 < kw && self.is_aligned();
        fits.then(|| [0, 1, 2, 3].map(|q| (p + q / 2) * kw + p + q % 2))
    }

    /// Scratch elements for one input plane split by the stride and one merged back: `2·h·w`
    /// for an aligned geometry with stride above 1 (with [`Conv2dGeom::phase_homes`], the
    /// split goes straight into the columns and only the merged plane is used), none
    /// otherwise.
    pub(super) const fn phase_len(&self) -> usize {
        if self.stride > 1 && self.is_aligned() {
            2 * self.h * self.w
        } else {
            0
        }
    }
}

/// Lays out the columns of the images `x: [m, c_in, h, w]` side by side as
/// `cols: [c_in·kh·kw, m·out_h·out_w]` with rows `ld` apart (`ld = n·out_h·out_w` places
/// them among the columns of a batch of `n`); `phases` has [`Conv2dGeom::phase_len`]
/// elements.
pub(super) fn im2col_batch<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    ld: usize,
    cols: &mut [T],
    phases: &mut [T],
) {
    vectorize(Im2col {
        g,
        x,
        ld,
        cols,
        phases,
    })
}

/// The adjoint of [`im2col_batch`]: adds the columns `cols: [c_in·kh·kw, m·out_h·out_w]`
/// (rows `ld` apart) onto `dx: [m, c_in, h, w]`, or writes them there when `add` is false
/// (whatever `dx` held). The entries of `cols` are scratch afterwards (some set to 0).
pub(super) fn col2im_batch<T: Float>(
    g: &Conv2dGeom,
    cols: &mut [T],
    ld: usize,
    dx: &mut [T],
    phases: &mut [T],
    add: bool,
) {
    vectorize(Col2im {
        g,
        cols,
        ld,
        dx,
        phases,
        add,
    })
}

/// [`im2col_batch`] as a loop compiled for the CPU's widest vectors.
struct Im2col<'a, T> {
    g: &'a Conv2dGeom,
    x: &'a [T],
    ld: usize,
    cols: &'a mut [T],
    phases: &'a mut [T],
}

impl<T: Float> Kernel for Im2col<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Im2col {
            g,
            x,
            ld,
            cols,
            phases,
        } = self;
        let ohw = g.out_h() * g.out_w();
        if let Some(homes) = g.phase_homes() {
            im2col_homes(g, x, cols, ld, homes);
            return;
        }
        for (img, x_img) in x.chunks_exact(g.input_len()).enumerate() {
            let cols = &mut cols[img * ohw..];
            if g.is_aligned() {
                im2col_aligned(g, x_img, cols, ld, phases);
            } else {
                im2col(g, x_img, cols, ld);
            }
        }
    }
}

/// [`col2im_batch`] as a loop compiled for the CPU's widest vectors.
struct Col2im<'a, T> {
    g: &'a Conv2dGeom,
    cols: &'a mut [T],
    ld: usize,
    dx: &'a mut [T],
    phases: &'a mut [T],
    add: bool,
}

impl<T: Float> Kernel for Col2im<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Col2im {
            g,
            cols,
            ld,
            dx,
            phases,
            add,
        } = self;
        let ohw = g.out_h() * g.out_w();
        if let Some(homes) = g.phase_homes() {
            col2im_homes(g, cols, ld, dx, homes, phases, add);
            return;
        }
        for (img, dx_img) in dx.chunks_exact_mut(g.input_len()).enumerate() {
            let cols = &mut cols[img * ohw..];
            if g.is_aligned() {
                col2im_aligned(g, cols, ld, dx_img, phases, add);
            } else {
                if !add {
                    dx_img.fill(T::zero());
                }
                col2im(g, cols, ld, dx_img);
            }
        }
    }
}

/// The phase and the shift of tap 0 with padding `p` and stride `s`: `-p = shift·s + phase`
/// with `0 <= phase < s`.
#[inline(always)]
fn first_phase(p: usize, s: usize) -> (usize, isize) {
    let (d, q) = (p / s, p % s);
    if q == 0 {
        (0, -(d as isize))
    } else {
        (s - q, -(d as isize) - 1)
    }
}

/// The phase and the shift of the next tap: one phase on, wrapping into the next shift.
#[inline(always)]
fn next_phase((q, d): (usize, isize), s: usize) -> (usize, isize) {
    if q + 1 == s {
        (0, d + 1)
    } else {
        (q + 1, d)
    }
}

/// The taps `(u, v)` in row-major order, as their index `u·kw + v` and their [`Shift`]
/// (`None` when the tap reads only padding), for an `[oh, ow]` output.
struct Taps {
    kh: usize,
    kw: usize,
    s: usize,
    oh: usize,
    ow: usize,
    first: (usize, isize),
    u: usize,
    v: usize,
    row: (usize, isize),
    col: (usize, isize),
}

impl Taps {
    #[inline(always)]
    fn new(g: &Conv2dGeom, oh: usize, ow: usize) -> Self {
        let first = first_phase(g.padding, g.stride);
        Taps {
            kh: g.kh,
            kw: g.kw,
            s: g.stride,
            oh,
            ow,
            first,
            u: 0,
            v: 0,
            row: first,
            col: first,
        }
    }
}

impl Iterator for Taps {
    type Item = (usize, Option<Shift>);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, Option<Shift>)> {
        if self.u == self.kh {
            return None;
        }
        let tap = self.u * self.kw + self.v;
        let shift = Shift::new(self.oh, self.ow, self.s, self.row, self.col);
        self.v += 1;
        self.col = next_phase(self.col, self.s);
        if self.v == self.kw {
            (self.u, self.v) = (self.u + 1, 0);
            (self.row, self.col) = (next_phase(self.row, self.s), self.first);
        }
        Some((tap, shift))
    }
}

/// The range of outputs `lo..hi` in `0..len` whose shifted index `o + shift` lies in
/// `0..len` too.
#[inline(always)]
fn shifted_range(shift: isize, len: usize) -> (usize, usize) {
    let len_i = len as isize;
    let lo = (-shift).clamp(0, len_i) as usize;
    let hi = (len_i - shift).clamp(0, len_i) as usize;
    (lo, hi.max(lo))
}

/// Where the row of one tap reads its phase plane, for an aligned geometry: the phase
/// plane's index, the output range `a..b` (flat, `i·out_w + j`) copied in one piece, its
/// offset in the plane, and the valid rows and columns.
struct Shift {
    plane: usize,
    a: usize,
    b: usize,
    src: usize,
    rows: (usize, usize),
    cols: (usize, usize),
}

impl Shift {
    /// The shift of the tap with row phase and shift `(qr, dr)` and column phase and shift
    /// `(qc, dc)` for an `[oh, ow]` output and stride `s`, or `None` when it reads only
    /// padding.
    #[inline(always)]
    fn new(
        oh: usize,
        ow: usize,
        s: usize,
        (qr, dr): (usize, isize),
        (qc, dc): (usize, isize),
    ) -> Option<Shift> {
        let (rows, cols) = (shifted_range(dr, oh), shifted_range(dc, ow));
        if rows.0 == rows.1 || cols.0 == cols.1 {
            return None;
        }
        let (a, b) = (rows.0 * ow + cols.0, (rows.1 - 1) * ow + cols.1);
        let src = (a as isize + dr * ow as isize + dc) as usize;
        Some(Shift {
            plane: qr * s + qc,
            a,
            b,
            src,
            rows,
            cols,
        })
    }

    /// The entries of `a..b` that wrapped across a row edge: the columns outside the valid
    /// ones of every valid row. Column by column: there are only `|shift|` of them, and a
    /// row-by-row loop would call `memset` for each row.
    #[inline(always)]
    fn clear_wrapped<T: Float>(&self, ow: usize, dst: &mut [T]) {
        let rows = &mut dst[self.rows.0 * ow..self.rows.1 * ow];
        for j in (0..self.cols.0).chain(self.cols.1..ow) {
            for e in rows.iter_mut().skip(j).step_by(ow) {
                *e = T::zero();
            }
        }
    }
}

/// [`im2col`] for an aligned geometry: one copy per row of the columns.
#[inline(always)]
fn im2col_aligned<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T], ld: usize, phases: &mut [T]) {
    let (oh, ow, taps) = (g.out_h(), g.out_w(), g.kh * g.kw);
    let ohw = oh * ow;
    if let Some(homes) = g.phase_homes() {
        im2col_homes(g, x, cols, ld, homes);
        return;
    }
    for (c, plane) in x.chunks_exact(g.h * g.w).enumerate() {
        let planes: &[T] = if g.stride == 1 {
            plane
        } else {
            split_phases(g, plane, phases);
            phases
        };
        for (t, shift) in Taps::new(g, oh, ow) {
            let dst = &mut cols[(c * taps + t) * ld..][..ohw];
            let Some(sh) = shift else {
                dst.fill(T::zero());
                continue;
            };
            let src = &planes[sh.plane * ohw..][..ohw];
            dst[sh.a..sh.b].copy_from_slice(&src[sh.src..][..sh.b - sh.a]);
            dst[..sh.a].fill(T::zero());
            dst[sh.b..].fill(T::zero());
            sh.clear_wrapped(ow, dst);
        }
    }
}

/// [`col2im`] for an aligned geometry: one vectorised add per row of the columns, after
/// setting the entries that wrapped across a row edge to 0. Overwrites `dx` unless `add`.
#[inline(always)]
fn col2im_aligned<T: Float>(
    g: &Conv2dGeom,
    cols: &mut [T],
    ld: usize,
    dx: &mut [T],
    phases: &mut [T],
    add: bool,
) {
    let (oh, ow, taps) = (g.out_h(), g.out_w(), g.kh * g.kw);
    let ohw = oh * ow;
    if let Some(homes) = g.phase_homes() {
        col2im_homes(g, cols, ld, dx, homes, phases, add);
        return;
    }
    if !add {
        dx.fill(T::zero());
    }
    for (c, plane) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
        let acc: &mut [T] = if g.stride == 1 {
            &mut *plane
        } else {
            phases[..g.stride * g.stride * ohw].fill(T::zero());
            &mut *phases
        };
        for (t, shift) in Taps::new(g, oh, ow) {
            let Some(sh) = shift else {
                continue;
            };
            let src = &mut cols[(c * taps + t) * ld..][..ohw];
            sh.clear_wrapped(ow, src);
            let acc = &mut acc[sh.plane * ohw..][sh.src..][..sh.b - sh.a];
            for (d, &e) in acc.iter_mut().zip(&src[sh.a..sh.b]) {
                *d += e;
            }
        }
        if g.stride > 1 {
            merge_phases(g, phases, plane);
        }
    }
}

/// [`im2col_aligned`] of the images `x: [m, c_in, h, w]` with stride 2 and
/// [`Conv2dGeom::phase_homes`]: each plane is split straight into the rows of the home taps
/// (rows `ld` apart in `cols`, the images side by side), and every other tap copied from
/// the home row of its phase in one piece for all `m` images; the entries that came from
/// the padding or from a neighbouring image are then set to 0 image by image.
#[inline(always)]
fn im2col_homes<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T], ld: usize, homes: [usize; 4]) {
    let (oh, ow, taps, hw) = (g.out_h(), g.out_w(), g.kh * g.kw, g.h * g.w);
    let ohw = oh * ow;
    let m = x.len() / g.input_len();
    if m == 0 {
        return;
    }
    for c in 0..g.c_in {
        let cols = &mut cols[c * taps * ld..];
        for img in 0..m {
            let plane = &x[img * g.input_len() + c * hw..][..hw];
            let [p00, p01, p10, p11] = rows_mut(cols, homes.map(|t| t * ld + img * ohw), ohw);
            for (row_index, row) in plane.chunks_exact(g.w).enumerate() {
                let a = row_index / 2;
                let (even, odd) = if row_index % 2 == 0 {
                    (&mut p00[a * ow..], &mut p01[a * ow..])
                } else {
                    (&mut p10[a * ow..], &mut p11[a * ow..])
                };
                deinterleave(row, &mut even[..ow], &mut odd[..ow]);
            }
        }
        for (t, shift) in Taps::new(g, oh, ow) {
            if homes.contains(&t) {
                continue;
            }
            let Some(sh) = shift else {
                cols[t * ld..][..m * ohw].fill(T::zero());
                continue;
            };
            let (src, len) = (homes[sh.plane] * ld + sh.src, (m - 1) * ohw + sh.b - sh.a);
            cols.copy_within(src..src + len, t * ld + sh.a);
            for img in 0..m {
                let dst = &mut cols[t * ld + img * ohw..][..ohw];
                dst[..sh.a].fill(T::zero());
                dst[sh.b..].fill(T::zero());
                sh.clear_wrapped(ow, dst);
            }
        }
    }
}

/// [`col2im_aligned`] of the images `dx: [m, c_in, h, w]` with stride 2 and
/// [`Conv2dGeom::phase_homes`]: every other tap is added onto the home row of its phase in
/// one piece for all `m` images (after setting to 0, image by image, its entries read from
/// the padding or from a neighbouring image), and each image's home rows are merged onto
/// its plane through `scratch` (`h·w` elements) when `add`, else straight into the plane.
#[inline(always)]
fn col2im_homes<T: Float>(
    g: &Conv2dGeom,
    cols: &mut [T],
    ld: usize,
    dx: &mut [T],
    homes: [usize; 4],
    scratch: &mut [T],
    add: bool,
) {
    let (oh, ow, taps, hw) = (g.out_h(), g.out_w(), g.kh * g.kw, g.h * g.w);
    let ohw = oh * ow;
    let m = dx.len() / g.input_len();
    if m == 0 {
        return;
    }
    for c in 0..g.c_in {
        let cols = &mut cols[c * taps * ld..];
        for (t, shift) in Taps::new(g, oh, ow) {
            let Some(sh) = shift.filter(|_| !homes.contains(&t)) else {
                continue;
            };
            for img in 0..m {
                let row = &mut cols[t * ld + img * ohw..][..ohw];
                row[..sh.a].fill(T::zero());
                row[sh.b..].fill(T::zero());
                sh.clear_wrapped(ow, row);
            }
            let len = (m - 1) * ohw + sh.b - sh.a;
            let (home, tap) = row_pair_mut(cols, homes[sh.plane] * ld, t * ld, m * ohw);
            for (d, &e) in home[sh.src..][..len].iter_mut().zip(&tap[sh.a..][..len]) {
                *d += e;
            }
        }
        for img in 0..m {
            let plane = &mut dx[img * g.input_len() + c * hw..][..hw];
            let merged = if add { &mut scratch[..hw] } else { &mut *plane };
            let home = |q: usize| &cols[homes[q] * ld + img * ohw..][..ohw];
            for (row_index, row) in merged.chunks_exact_mut(g.w).enumerate() {
                let (a, qr) = (row_index / 2, row_index % 2);
                let (even, odd) = (home(2 * qr), home(2 * qr + 1));
                interleave(&even[a * ow..][..ow], &odd[a * ow..][..ow], row);
            }
            if add {
                for (d, &e) in plane.iter_mut().zip(&scratch[..hw]) {
                    *d += e;
                }
            }
        }
    }
}

/// The `N` rows `buf[offsets[i]..][..len]`, which must not overlap, mutably at once.
#[inline(always)]
fn rows_mut<T, const N: usize>(buf: &mut [T], offsets: [usize; N], len: usize) -> [&mut [T]; N] {
    let mut order: [usize; N] = core::array::from_fn(|i| i);
    order.sort_unstable_by_key(|&i| offsets[i]);
    let mut rows: [Option<&mut [T]>; N] = core::array::from_fn(|_| None);
    let (mut rest, mut base) = (buf, 0);
    for i in order {
        let tail = core::mem::take(&mut rest).split_at_mut(offsets[i] - base).1;
        let (row, tail) = tail.split_at_mut(len);
        (rows[i], rest, base) = (Some(row), tail, offsets[i] + len);
    }
    rows.map(|row| row.expect("every row was taken"))
}

/// Row `buf[a..][..len]` mutably and row `buf[b..][..len]`, which must not overlap.
#[inline(always)]
fn row_pair_mut<T>(buf: &mut [T], a: usize, b: usize, len: usize) -> (&mut [T], &[T]) {
    if a < b {
        let (lo, hi) = buf.split_at_mut(b);
        (&mut lo[a..][..len], &hi[..len])
    } else {
        let (lo, hi) = buf.split_at_mut(a);
        (&mut hi[..len], &lo[b..][..len])
    }
}

/// `phases[qr·s + qc][a, b] = plane[a·s + qr, b·s + qc]` for an aligned geometry: the `s²`
/// phase planes of one `[h, w]` plane, each `[out_h, out_w]`.
#[inline(always)]
fn split_phases<T: Float>(g: &Conv2dGeom, plane: &[T], phases: &mut [T]) {
    let (s, ow, ohw) = (g.stride, g.out_w(), g.out_h() * g.out_w());
    for (row_index, row) in plane.chunks_exact(g.w).enumerate() {
        let (a, qr) = (row_index / s, row_index % s);
        let dst = &mut phases[qr * s * ohw..][..s * ohw];
        if s == 2 {
            let (even, odd) = dst.split_at_mut(ohw);
            deinterleave(row, &mut even[a * ow..][..ow], &mut odd[a * ow..][..ow]);
            continue;
        }
        for (qc, phase) in dst.chunks_exact_mut(ohw).enumerate() {
            for (d, group) in phase[a * ow..][..ow].iter_mut().zip(row.chunks_exact(s)) {
                *d = group[qc];
            }
        }
    }
}

/// The adjoint of [`split_phases`]: `plane[a·s + qr, b·s + qc] += phases[qr·s + qc][a, b]`.
/// With stride 2, `phases` holds one more plane after the phase planes, for the merged one.
#[inline(always)]
fn merge_phases<T: Float>(g: &Conv2dGeom, phases: &mut [T], plane: &mut [T]) {
    let (s, ow, ohw) = (g.stride, g.out_w(), g.out_h() * g.out_w());
    if s == 2 {
        // interleave into a plane of its own, then add it in one vectorised loop
        let (src, merged) = phases.split_at_mut(4 * ohw);
        for (row_index, row) in merged.chunks_exact_mut(g.w).enumerate() {
            let (a, qr) = (row_index / 2, row_index % 2);
            let (even, odd) = src[qr * 2 * ohw..][..2 * ohw].split_at(ohw);
            interleave(&even[a * ow..][..ow], &odd[a * ow..][..ow], row);
        }
        for (d, &e) in plane.iter_mut().zip(&*merged) {
            *d += e;
        }
        return;
    }
    for (row_index, row) in plane.chunks_exact_mut(g.w).enumerate() {
        let (a, qr) = (row_index / s, row_index % s);
        let src = &phases[qr * s * ohw..][..s * ohw];
        for (qc, phase) in src.chunks_exact(ohw).enumerate() {
            for (group, &e) in row.chunks_exact_mut(s).zip(&phase[a * ow..][..ow]) {
                group[qc] += e;
            }
        }
    }
}

/// `even[b] = row[2b]`, `odd[b] = row[2b + 1]`: in blocks of 16 or 8 (the last block
/// overlapping the one before), so that each block is a few vector shuffles.
#[inline(always)]
fn deinterleave<T: Float>(row: &[T], even: &mut [T], odd: &mut [T]) {
    match even.len() {
        16.. => deinterleave_blocks::<T, 16>(row, even, odd),
        8.. => deinterleave_blocks::<T, 8>(row, even, odd),
        _ => {
            for ((e, o), pair) in even.iter_mut().zip(odd).zip(row.chunks_exact(2)) {
                (*e, *o) = (pair[0], pair[1]);
            }
        }
    }
}

/// [`deinterleave`] in blocks of `B >= even.len()` outputs.
#[inline(always)]
fn deinterleave_blocks<T: Float, const B: usize>(row: &[T], even: &mut [T], odd: &mut [T]) {
    let len = even.len();
    let mut next = 0;
    loop {
        let at = next.min(len - B);
        let src = &row[2 * at..][..2 * B];
        let (e, o) = (&mut even[at..][..B], &mut odd[at..][..B]);
        for l in 0..B {
            e[l] = src[2 * l];
            o[l] = src[2 * l + 1];
        }
        if at + B == len {
            return;
        }
        next += B;
    }
}

/// The inverse of [`deinterleave`]: `row[2b] = even[b]`, `row[2b + 1] = odd[b]`.
#[inline(always)]
fn interleave<T: Float>(even: &[T], odd: &[T], row: &mut [T]) {
    match even.len() {
        16.. => interleave_blocks::<T, 16>(even, odd, row),
        8.. => interleave_blocks::<T, 8>(even, odd, row),
        _ => {
            for ((&e, &o), pair) in even.iter().zip(odd).zip(row.chunks_exact_mut(2)) {
                (pair[0], pair[1]) = (e, o);
            }
        }
    }
}

/// [`interleave`] in blocks of `B >= even.len()` inputs.
#[inline(always)]
fn interleave_blocks<T: Float, const B: usize>(even: &[T], odd: &[T], row: &mut [T]) {
    let len = even.len();
    let mut next = 0;
    loop {
        let at = next.min(len - B);
        let dst = &mut row[2 * at..][..2 * B];
        let (e, o) = (&even[at..][..B], &odd[at..][..B]);
        for l in 0..B {
            dst[2 * l] = e[l];
            dst[2 * l + 1] = o[l];
        }
        if at + B == len {
            return;
        }
        next += B;
    }
}

/// The range `lo..hi` of output positions whose tap at kernel offset `k` lands inside an
/// input of length `len` (rather than in the padding): `0 <= o·s + k - p < len`.
#[inline(always)]
fn valid_outputs(k: usize, len: usize, s: usize, p: usize, out: usize) -> (usize, usize) {
    let lo = if k >= p { 0 } else { (p - k).div_ceil(s) };
    let hi = if len + p > k {
        (len + p - k).div_ceil(s).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Lays one image `x: [c_in, h, w]` out as its columns, row `r` at `cols[r·ld..]`, one
/// output row at a time: any geometry.
#[inline(always)]
fn im2col<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T], ld: usize) {
    let (oh, ow, s, p) = (g.out_h(), g.out_w(), g.stride, g.padding);
    let mut r = 0;
    for plane in x.chunks_exact(g.h * g.w) {
        for u in 0..g.kh {
            let (i_lo, i_hi) = valid_outputs(u, g.h, s, p, oh);
            for v in 0..g.kw {
                let (j_lo, j_hi) = valid_outputs(v, g.w, s, p, ow);
                let row = &mut cols[r * ld..][..oh * ow];
                r += 1;
                row[..i_lo * ow].fill(T::zero());
                row[i_hi * ow..].fill(T::zero());
                for i in i_lo..i_hi {
                    let src = &plane[(i * s + u - p) * g.w..][..g.w];
                    let dst = &mut row[i * ow..][..ow];
                    dst[..j_lo].fill(T::zero());
                    dst[j_hi..].fill(T::zero());
                    let dst = &mut dst[j_lo..j_hi];
                    let src = &src[j_lo * s + v - p..];
                    if s == 1 {
                        dst.copy_from_slice(&src[..dst.len()]);
                    } else {
                        for (j, d) in dst.iter_mut().enumerate() {
                            *d = src[j * s];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of the columns onto the input position it
/// was read from; entries that came from the padding are dropped.
#[inline(always)]
fn col2im<T: Float>(g: &Conv2dGeom, cols: &[T], ld: usize, dx: &mut [T]) {
    let (oh, ow, s, p) = (g.out_h(), g.out_w(), g.stride, g.padding);
    let mut r = 0;
    for plane in dx.chunks_exact_mut(g.h * g.w) {
        for u in 0..g.kh {
            let (i_lo, i_hi) = valid_outputs(u, g.h, s, p, oh);
            for v in 0..g.kw {
                let (j_lo, j_hi) = valid_outputs(v, g.w, s, p, ow);
                let row = &cols[r * ld..][..oh * ow];
                r += 1;
                for i in i_lo..i_hi {
                    let dst = &mut plane[(i * s + u - p) * g.w..][..g.w];
                    let src = &row[i * ow..][j_lo..j_hi];
                    let dst = &mut dst[j_lo * s + v - p..];
                    if s == 1 {
                        for (d, &c) in dst.iter_mut().zip(src) {
                            *d += c;
                        }
                    } else {
                        for (j, &c) in src.iter().enumerate() {
                            dst[j * s] += c;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::random_vec;

    #[test]
    fn phases_count_up_from_minus_the_padding() {
        // t - p = shift·s + phase for t = 0..k
        for (k, p, s) in [
            (3, 1, 1),
            (3, 1, 2),
            (5, 2, 2),
            (7, 5, 3),
            (4, 0, 3),
            (3, 4, 2),
        ] {
            let expected: Vec<(usize, isize)> = (0..k)
                .map(|t| {
                    let d = t as isize - p as isize;
                    (d.rem_euclid(s as isize) as usize, d.div_euclid(s as isize))
                })
                .collect();
            let got: Vec<_> =
                std::iter::successors(Some(first_phase(p, s)), |&q| Some(next_phase(q, s)))
                    .take(k)
                    .collect();
            assert_eq!(got, expected, "k {k}, p {p}, s {s}");
        }
        // padding 1, stride 2: t - 1 = -1, 0, 1 -> (1, -1), (0, 0), (1, 0)
        assert_eq!(first_phase(1, 2), (1, -1));
        assert_eq!(next_phase((1, -1), 2), (0, 0));
    }

    #[test]
    fn phase_planes_literal() {
        // a 4x4 plane 0..16 with stride 2 (2x2 outputs): phase (qr, qc) takes rows qr, qr+2
        // and columns qc, qc+2, e.g. (0, 1) -> [[1, 3], [9, 11]]; merging adds them back
        let g = Conv2dGeom::new(1, 4, 4, 1, 2, 2, 2, 0).unwrap();
        assert!(g.is_aligned() && g.phase_len() == 32);
        let plane: Vec<f64> = (0..16).map(f64::from).collect();
        let mut phases = vec![f64::NAN; 32];
        split_phases(&g, &plane, &mut phases);
        #[rustfmt::skip]
        let expected = [
            0.0, 2.0, 8.0, 10.0, 1.0, 3.0, 9.0, 11.0,
            4.0, 6.0, 12.0, 14.0, 5.0, 7.0, 13.0, 15.0,
        ];
        assert_eq!(phases[..16], expected);
        let mut twice = plane.clone();
        merge_phases(&g, &mut phases, &mut twice);
        assert_eq!(twice, plane.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }

    #[test]
    fn interleaving_in_blocks() {
        // every length through the scalar loop, one block of 8 or 16, overlapping blocks
        for len in 0..40 {
            let row: Vec<f64> = (0..2 * len).map(|v| v as f64).collect();
            let (mut even, mut odd) = (vec![f64::NAN; len], vec![f64::NAN; len]);
            deinterleave(&row, &mut even, &mut odd);
            assert!(
                even.iter().enumerate().all(|(b, &e)| e == (2 * b) as f64),
                "{len}"
            );
            assert!(
                odd.iter()
                    .enumerate()
                    .all(|(b, &o)| o == (2 * b + 1) as f64),
                "{len}"
            );
            let mut back = vec![f64::NAN; 2 * len];
            interleave(&even, &odd, &mut back);
            assert_eq!(back, row);
        }
    }

    #[test]
    fn phase_homes_and_rows() {
        let g = |k, s, p| Conv2dGeom::new(1, 8, 8, 1, k, k, s, p).unwrap();
        // 3x3, padding 1: phase (qr, qc) is tap (1 + qr, 1 + qc) = 4, 5, 7, 8
        assert_eq!(g(3, 2, 1).phase_homes(), Some([4, 5, 7, 8]));
        assert_eq!(g(2, 2, 0).phase_homes(), Some([0, 1, 2, 3]));
        assert_eq!(g(4, 2, 1).phase_homes(), Some([5, 6, 9, 10]));
        // a 1x1 kernel reaches phase (0, 0) only; stride 1 has no phases to split
        assert_eq!(g(1, 2, 0).phase_homes(), None);
        assert_eq!(g(3, 1, 1).phase_homes(), None);
        let mut buf: Vec<i32> = (0..12).collect();
        let [a, b, c] = rows_mut(&mut buf, [8, 0, 4], 2);
        assert_eq!((&*a, &*b, &*c), (&[8, 9][..], &[0, 1][..], &[4, 5][..]));
        let (m, r) = row_pair_mut(&mut buf, 6, 2, 3);
        m[0] += r[0];
        assert_eq!((&*m, r), (&[8, 7, 8][..], &[2, 3, 4][..]));
        let (m, r) = row_pair_mut(&mut buf, 0, 9, 3);
        assert_eq!((&*m, r), (&[0, 1, 2][..], &[9, 10, 11][..]));
    }

    #[test]
    fn alignment_and_scratch() {
        let g = |c, h, w, k, s, p| Conv2dGeom::new(c, h, w, 2, k, k, s, p).unwrap();
        // "same" 3x3 with stride 1 and 2 (even sizes), a pointwise kernel, 2x2 patches
        assert!(g(1, 28, 28, 3, 1, 1).is_aligned() && g(1, 28, 28, 3, 1, 1).phase_len() == 0);
        assert!(g(8, 28, 28, 3, 2, 1).is_aligned() && g(8, 28, 28, 3, 2, 1).phase_len() == 1568);
        assert!(g(1, 6, 9, 3, 3, 0).is_aligned() && g(1, 6, 9, 3, 3, 0).phase_len() == 108);
        assert!(g(3, 5, 7, 1, 1, 0).is_aligned());
        assert!(g(3, 6, 4, 2, 2, 0).is_aligned());
        // odd size with stride 2, no padding with a 3x3 kernel
        assert!(!g(8, 27, 28, 3, 2, 1).is_aligned() && g(8, 27, 28, 3, 2, 1).phase_len() == 0);
        assert!(!g(1, 28, 28, 3, 1, 0).is_aligned());
    }

    /// Aligned geometries of every kind: strides 1 to 3, shifts of -2 to 1, kernels that
    /// reach past the whole input.
    fn aligned_geometries() -> Vec<Conv2dGeom> {
        let g = |c, h, w, kh, kw, s, p| Conv2dGeom::new(c, h, w, 3, kh, kw, s, p).unwrap();
        let gs = vec![
            g(2, 5, 4, 3, 3, 1, 1),
            g(1, 6, 6, 5, 5, 1, 2),
            g(2, 3, 5, 1, 1, 1, 0),
            g(2, 6, 8, 3, 3, 2, 1),
            g(1, 8, 6, 4, 4, 2, 1),
            g(2, 4, 6, 2, 2, 2, 0),
            g(1, 6, 4, 5, 5, 2, 2),
            g(2, 6, 9, 3, 3, 3, 0),
            g(1, 1, 1, 3, 3, 1, 1),
            g(1, 2, 2, 5, 5, 1, 2),
            g(1, 4, 28, 3, 3, 2, 1),
            g(2, 6, 40, 3, 3, 2, 1),
            g(1, 2, 34, 1, 1, 2, 0),
            g(2, 2, 2, 3, 3, 2, 1),
        ];
        for g in &gs {
            assert!(g.is_aligned(), "{g:?}");
        }
        gs
    }

    #[test]
    fn batches_equal_the_general_path_image_by_image() {
        // several images side by side (the stride-2 home taps are copied and added for all
        // of them at once), inside a wider batch
        for g in aligned_geometries() {
            let (ohw, k, m) = (g.out_h() * g.out_w(), g.c_in * g.kh * g.kw, 3);
            let ld = (m + 1) * ohw;
            let x: Vec<f64> = random_vec(4, m * g.input_len(), -1.0, 1.0);
            let mut phases = vec![f64::NAN; g.phase_len()];
            let (mut batch, mut general) = (vec![7.0; k * ld], vec![7.0; k * ld]);
            im2col_batch(&g, &x, ld, &mut batch[ohw..], &mut phases);
            for (img, x_img) in x.chunks_exact(g.input_len()).enumerate() {
                im2col(&g, x_img, &mut general[(img + 1) * ohw..], ld);
            }
            assert_eq!(batch, general, "im2col of {g:?}");
            let cols: Vec<f64> = random_vec(5, k * ld, -1.0, 1.0);
            for add in [true, false] {
                let dx0: Vec<f64> = random_vec(6, m * g.input_len(), -1.0, 1.0);
                let (mut batch, mut general) = (dx0.clone(), dx0);
                col2im_batch(
                    &g,
                    &mut cols.clone()[ohw..],
                    ld,
                    &mut batch,
                    &mut phases,
                    add,
                );
                for (img, dx_img) in general.chunks_exact_mut(g.input_len()).enumerate() {
                    if !add {
                        dx_img.fill(0.0);
                    }
                    col2im(&g, &cols[(img + 1) * ohw..], ld, dx_img);
                }
                assert_close!(batch, general, 1e-14);
            }
        }
    }

    #[test]
    fn aligned_path_equals_general_path() {
        for g in aligned_geometries() {
            let (ohw, k) = (g.out_h() * g.out_w(), g.c_in * g.kh * g.kw);
            let x: Vec<f64> = random_vec(1, g.input_len(), -1.0, 1.0);
            // columns of one image inside a batch of 2 (ld = 2·ohw), as image 1
            let ld = 2 * ohw;
            let mut phases = vec![f64::NAN; g.phase_len()];
            let (mut fast, mut general) = (vec![7.0; k * ld], vec![7.0; k * ld]);
            im2col_aligned(&g, &x, &mut fast[ohw..], ld, &mut phases);
            im2col(&g, &x, &mut general[ohw..], ld);
            assert_eq!(fast, general, "im2col of {g:?}");
            let cols: Vec<f64> = random_vec(2, k * ld, -1.0, 1.0);
            let dx0: Vec<f64> = random_vec(3, g.input_len(), -1.0, 1.0);
            let (mut fast, mut general) = (dx0.clone(), dx0);
            col2im_aligned(
                &g,
                &mut cols.clone()[ohw..],
                ld,
                &mut fast,
                &mut phases,
                true,
            );
            col2im(&g, &cols[ohw..], ld, &mut general);
            assert_close!(fast, general, 1e-14);
            // overwriting equals adding onto zeros, whatever dx held
            let (mut set, mut zeros) = (vec![f64::NAN; g.input_len()], vec![0.0; g.input_len()]);
            col2im_aligned(
                &g,
                &mut cols.clone()[ohw..],
                ld,
                &mut set,
                &mut phases,
                false,
            );
            col2im(&g, &cols[ohw..], ld, &mut zeros);
            assert_close!(set, zeros, 1e-14);
        }
    }
}
