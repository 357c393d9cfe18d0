//! Buffers of 32-bit values that start on a 64-byte line.
//!
//! Why: the packed weights are read one 64-byte register at a time. `Vec<f32>` is only
//! 16-byte aligned (a large block from glibc's `mmap` path starts 16 bytes into a page), so
//! every such load would straddle two cache lines; measured, that held the f32 kernel to ~80%
//! of `gemm`'s speed at large shapes.

/// One cache line of 32-bit values.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Line([u32; 16]);

/// `len` 32-bit values, zeroed at first, on whole cache lines.
#[derive(Clone, Debug, Default)]
pub struct Aligned32 {
    lines: Vec<Line>,
    len: usize,
}

impl Aligned32 {
    pub fn zeroed(len: usize) -> Self {
        Self {
            lines: vec![Line::default(); len.div_ceil(16)],
            len,
        }
    }

    pub fn as_u32(&self) -> &[u32] {
        // SAFETY: `lines` holds `lines.len() * 16 >= len` initialised u32s, contiguous
        // (`Line` is `repr(C)` of `[u32; 16]` with no padding: 64 bytes, align 64).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }

    pub fn as_u32_mut(&mut self) -> &mut [u32] {
        // SAFETY: as in `as_u32`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }

    pub fn as_f32(&self) -> &[f32] {
        // SAFETY: as in `as_u32`; every bit pattern is a valid f32, and f32 has u32's size
        // and alignment.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }

    pub fn as_f32_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_f32`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_line_and_holds_its_length() {
        for len in [0, 1, 16, 17, 100_000] {
            let mut b = Aligned32::zeroed(len);
            assert_eq!(b.as_f32().as_ptr() as usize % 64, 0);
            assert_eq!((b.as_f32().len(), b.as_u32().len()), (len, len));
            assert!(b.as_f32().iter().all(|&v| v == 0.0));
            if let Some(last) = b.as_f32_mut().last_mut() {
                *last = 1.5;
                assert_eq!(b.as_u32()[len - 1], 1.5f32.to_bits());
            }
        }
    }
}
