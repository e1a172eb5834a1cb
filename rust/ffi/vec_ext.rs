//! `push_within_capacity` for stable Rust: the hot path appends to vectors whose
//! room it checked, and must not contain (or call) the growth path of `Vec::push`.

/// Appends `value` if `v` has spare capacity; gives it back otherwise.
#[inline(always)]
pub fn push_within_capacity<T>(v: &mut Vec<T>, value: T) -> Result<(), T> {
    let len = v.len();
    if len == v.capacity() {
        return Err(value);
    }
    // SAFETY: `len < capacity`, so the slot at `len` is allocated and unused; it is
    // initialised by the write before the length covers it.
    unsafe {
        v.as_mut_ptr().add(len).write(value);
        v.set_len(len + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::push_within_capacity;

    #[test]
    fn pushes_until_full() {
        let mut v: Vec<u32> = Vec::with_capacity(2);
        let cap = v.capacity();
        for i in 0..cap as u32 {
            assert_eq!(push_within_capacity(&mut v, i), Ok(()));
        }
        assert_eq!(push_within_capacity(&mut v, 99), Err(99));
        assert_eq!(v.len(), cap);
        assert_eq!(v.capacity(), cap);
    }
}
