// Everything a user of the pool core needs, in one include.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/config.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/error.hpp>
#include <netpool/events.hpp>
#include <netpool/lease.hpp>
#include <netpool/options.hpp>
#include <netpool/pool.hpp>
#include <netpool/pool_set.hpp>
#include <netpool/registry.hpp>
#include <netpool/stats.hpp>
#include <netpool/stream.hpp>
#include <netpool/transport.hpp>
