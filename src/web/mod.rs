//! What orderflow's HTTP servers share (`serve`, `codec-server`): who may
//! call them ([`guard`]) and how connections are accepted ([`listen`]).

pub mod guard;
pub mod listen;
