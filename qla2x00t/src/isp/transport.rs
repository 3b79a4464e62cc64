//! `rscst_core::Transport` for the driver: the core's requests become
//! CTIO7s, ABTS_RESPs and terminates (see `command.rs` and `session.rs`).

use rscst_core::{Busy, CmdRef, Data, Status, TmfRef, TmfResponse, Transport};
use rscst_hba::Platform;

use super::Isp;

impl<P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize> Transport
    for Isp<'_, P, REQ, RSP, ATIO>
{
    fn queue_data_in(
        &mut self,
        cmd: CmdRef,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        self.t_queue_data_in(cmd, data, status)
    }

    fn request_data_out(&mut self, cmd: CmdRef, data: &Data<'_>) -> Result<(), Busy> {
        self.t_request_data_out(cmd, data)
    }

    fn queue_status(&mut self, cmd: CmdRef, status: &Status<'_>) -> Result<(), Busy> {
        self.t_queue_status(cmd, status)
    }

    fn queue_tmf_response(&mut self, tmf: TmfRef, response: &TmfResponse) -> Result<(), Busy> {
        self.t_queue_tmf_response(tmf, response)
    }

    fn command_aborted(&mut self, cmd: CmdRef) -> Result<(), Busy> {
        self.t_command_aborted(cmd)
    }

    fn tmf_dropped(&mut self, tmf: TmfRef) {
        self.t_tmf_dropped(tmf)
    }

    fn hw_pending_timeout(&mut self, cmd: CmdRef) {
        // The driver has its own completion deadline per IOCB (config
        // `completion_timeout`), which terminates the exchange and, if even
        // that is not answered, resets the chip; nothing more to do here.
        let _ = cmd;
    }
}
