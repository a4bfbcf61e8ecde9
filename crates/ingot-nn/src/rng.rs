//! The random state layers draw from when they are built (initializers) and when they run
//! (dropout): one process-wide key, split at each use, so a seed fixes a whole training run
//! and a checkpoint can save and restore it.

use ingot::{Array, Result};
use parking_lot::Mutex;

static STATE: Mutex<Option<Array>> = Mutex::new(None);

/// A key from a seed (ingot's counter-based keys).
pub fn key(seed: u64) -> Array {
    ingot::random::key(seed)
}

/// Restarts the shared state from `seed`.
pub fn seed(seed: u64) {
    *STATE.lock() = Some(key(seed));
}

/// A fresh key from the shared state (seeded with 0 if never seeded), which moves on.
pub fn next_key() -> Result<Array> {
    let mut st = STATE.lock();
    let cur = st.get_or_insert_with(|| key(0)).clone();
    let two = ingot::random::split(&cur, 2)?;
    let next = ingot::random::key_at(&two, 0)?;
    let out = ingot::random::key_at(&two, 1)?;
    // Computed now, so the state never holds a growing chain of splits.
    ingot::eval(&[next.clone(), out.clone()])?;
    *st = Some(next);
    Ok(out)
}

/// The shared state as it is now (for a checkpoint).
pub fn state() -> Array {
    STATE.lock().get_or_insert_with(|| key(0)).clone()
}

/// Restores a state saved with [`state`].
pub fn set_state(k: Array) -> Result<()> {
    if k.dtype() != ingot::DType::U32 || k.shape() != [2] {
        return Err(ingot::Error::invalid(
            "rng::set_state",
            format!("a key is (2,) uint32, got {:?} {}", k.shape(), k.dtype()),
        ));
    }
    *STATE.lock() = Some(k);
    Ok(())
}
