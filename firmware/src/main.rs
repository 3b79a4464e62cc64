//! The on-card rscst image (skeleton: boots, logs and idles; the driver issue
//! wires core + qla2x00t over the card's MMIO backend here).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
mod image {
    use cortex_m_rt::entry;
    use defmt_rtt as _;
    use panic_probe as _;

    #[entry]
    fn main() -> ! {
        defmt::info!("rscst firmware image up");
        loop {
            cortex_m::asm::wfi();
        }
    }
}

/// Host builds of the workspace compile this stub instead of the image.
#[cfg(not(target_os = "none"))]
fn main() {}
