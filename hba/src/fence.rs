//! Ordering between ring memory and doorbell registers.

use core::sync::atomic::{Ordering, fence};

/// The two ordering points of a descriptor-ring protocol.
///
/// * `release` before a doorbell write: every ring-slot write issued before it
///   is visible to the device before the doorbell is.
/// * `acquire` after seeing new work (an in-pointer or a slot signature) and
///   before copying the slot out.
///
/// On a cache-coherent host (x86 with VFIO) these are CPU fences; a
/// non-coherent controller adds cache maintenance in its implementation. The
/// simulator counts the calls so tests can check a fence precedes each
/// doorbell.
pub trait DmaFence {
    /// Make prior writes to DMA memory visible to the device.
    fn release(&self);
    /// Make device writes observed so far visible to subsequent reads.
    fn acquire(&self);
}

/// CPU memory fences, enough on a cache-coherent host.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuFence;

impl DmaFence for CpuFence {
    fn release(&self) {
        fence(Ordering::Release);
    }
    fn acquire(&self) {
        fence(Ordering::Acquire);
    }
}

impl<F: DmaFence + ?Sized> DmaFence for &F {
    fn release(&self) {
        (**self).release()
    }
    fn acquire(&self) {
        (**self).acquire()
    }
}
