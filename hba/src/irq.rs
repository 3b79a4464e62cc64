//! The interrupt line of a PCI function.

use core::time::Duration;

/// How an interrupt line signals, which decides when a driver acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A message per event (MSI, MSI-X): acknowledge *before* reading the
    /// device's cause, so a message sent after that read latches again.
    Edge,
    /// A level the device holds while a cause is pending (INTx; a level line
    /// on the card's interrupt controller): acknowledge *after* the causes
    /// were cleared in the device, since re-arming while it still asserts
    /// latches again at once (on VFIO, an INTx unmask while asserted fires
    /// again). A cause raised after the clear keeps the level up, so the
    /// re-arm latches it.
    Level,
}

/// An interrupt line (INTx, MSI or one MSI-X vector).
///
/// The device-level cause is cleared by the driver through registers (on the
/// ISP: `hccr = CLEAR_RISC_INT`); `ack` only re-arms the line at the host side
/// (an eventfd read on VFIO MSI-X, an unmask on VFIO INTx, an NVIC clear on the
/// card). `pending` is called on every poll and must be cheap (no system
/// call, no device access): a flag the platform's interrupt path sets.
pub trait Irq {
    /// Whether an interrupt is latched and not yet acknowledged.
    fn pending(&self) -> bool;
    /// Acknowledge the latched interrupt at the host side.
    fn ack(&self);
    /// Sleep until an interrupt is pending or `timeout` passes (`None`: no
    /// limit). Returns whether an interrupt is pending. A no_std backend may
    /// implement this with WFI or a spin.
    fn wait(&self, timeout: Option<Duration>) -> bool;
    /// How the line signals (see [`Trigger`]). The default, `Edge`, is the
    /// order that is safe for both kinds, at the cost of one spurious latch
    /// per interrupt on a level line.
    fn trigger(&self) -> Trigger {
        Trigger::Edge
    }
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
    fn trigger(&self) -> Trigger {
        (**self).trigger()
    }
}
