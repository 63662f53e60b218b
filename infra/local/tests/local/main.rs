//! End-to-end tests of the local stack with a real MQTT client (`rumqttc`) over TCP.

mod api;
mod auth;
mod device;
mod lambda;
mod pipeline;
mod restart;
mod sharing;
mod simulator;
mod support;
mod tokens;
