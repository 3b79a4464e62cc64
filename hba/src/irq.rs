//! The interrupt line of a PCI function.

use core::time::Duration;

/// An interrupt line (INTx, MSI or one MSI-X vector).
///
/// The device-level cause is cleared by the driver through registers (on the
/// ISP: `hccr = CLEAR_RISC_INT`); `ack` only re-arms the line at the host side
/// (an eventfd read on VFIO, an NVIC clear on the card).
pub trait Irq {
    /// Whether an interrupt is latched and not yet acknowledged.
    fn pending(&self) -> bool;
    /// Acknowledge the latched interrupt at the host side.
    fn ack(&self);
    /// Sleep until an interrupt is pending or `timeout` passes (`None`: no
    /// limit). Returns whether an interrupt is pending. A no_std backend may
    /// implement this with WFI or a spin.
    fn wait(&self, timeout: Option<Duration>) -> bool;
}

impl<I: Irq + ?Sized> Irq for &I {
    fn pending(&self) -> bool {
        (**self).pending()
    }
    fn ack(&self) {
        (**self).ack()
    }
    fn wait(&self, timeout: Option<Duration>) -> bool {
        (**self).wait(timeout)
    }
}
