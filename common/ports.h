#pragma once
/*
 * Where fsd listens unless its config says otherwise, and so where its own tools (fsctl,
 * fsd-materialize, grpc_load) look for it: one definition for the server's option defaults
 * and the clients' --addr defaults. 6566 is also Feast's feature server port: a Feast client
 * pointed at its usual address finds fsd.
 */

#define FSD_GRPC_DEFAULT_PORT  6566
#define FSD_STATS_DEFAULT_PORT 9466
#define FSD_DEFAULT_BIND       "127.0.0.1"

/* The text forms, for option defaults and help texts: "6566", "127.0.0.1:6566". */
#define FSD_PORT_TEXT_(port)   #port
#define FSD_PORT_TEXT(port)    FSD_PORT_TEXT_(port)
#define FSD_GRPC_DEFAULT_ADDR  FSD_DEFAULT_BIND ":" FSD_PORT_TEXT(FSD_GRPC_DEFAULT_PORT)
#define FSD_STATS_DEFAULT_ADDR FSD_DEFAULT_BIND ":" FSD_PORT_TEXT(FSD_STATS_DEFAULT_PORT)
