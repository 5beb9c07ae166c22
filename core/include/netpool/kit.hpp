// The adapter kit: what a protocol adapter is made of besides its own parser and commands.
// See docs/adapters.md.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/base64.hpp>
#include <netpool/connection.hpp>
#include <netpool/kit/failure_record.hpp>
#include <netpool/kit/io.hpp>
#include <netpool/kit/session.hpp>
#include <netpool/redact.hpp>
#include <netpool/transport.hpp>
