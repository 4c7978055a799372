//! Smithay protocol handlers, one file per concern, and the delegate macros that wire them.

mod compositor;
mod dmabuf;
mod protocols;
mod seat;
pub mod selection;
mod xdg_shell;
mod xwayland;

use crate::state::State;

smithay::delegate_compositor!(State);
smithay::delegate_shm!(State);
smithay::delegate_dmabuf!(State);
smithay::delegate_xdg_shell!(State);
smithay::delegate_xdg_decoration!(State);
smithay::delegate_layer_shell!(State);
smithay::delegate_seat!(State);
smithay::delegate_output!(State);
smithay::delegate_viewporter!(State);
smithay::delegate_presentation!(State);
smithay::delegate_fractional_scale!(State);
smithay::delegate_relative_pointer!(State);
smithay::delegate_pointer_constraints!(State);
smithay::delegate_xdg_activation!(State);
smithay::delegate_data_device!(State);
smithay::delegate_primary_selection!(State);
smithay::delegate_data_control!(State);
smithay::delegate_cursor_shape!(State);
smithay::delegate_xwayland_shell!(State);
