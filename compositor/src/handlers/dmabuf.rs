//! linux-dmabuf: GPU clients hand over their buffers as dmabufs (offered only with the
//! GLES engine on a GPU; Mesa finds the render node through the default feedback).

use crate::state::State;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::wayland::dmabuf::{DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier};

impl DmabufHandler for State {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        &mut self.dmabuf.state
    }

    fn dmabuf_imported(&mut self, _global: &DmabufGlobal, dmabuf: Dmabuf, notifier: ImportNotifier) {
        // Refused here, a bad buffer fails the client's create request cleanly instead of
        // vanishing from frames later.
        let imported = self.dmabuf.import.as_mut().is_some_and(|import| import(&dmabuf));
        if imported {
            let _ = notifier.successful::<State>();
        } else {
            tracing::warn!("refusing a client dmabuf the renderer cannot import");
            notifier.failed();
        }
    }
}
