/* systemd's readiness protocol without libsystemd: one datagram to $NOTIFY_SOCKET (see
 * sd_notify(3)), so the unit can be Type=notify and anything ordered after ocgate.service
 * starts only once the schema was checked and the listener is bound. Does nothing when
 * NOTIFY_SOCKET is unset, which is the case outside systemd. */
#pragma once

/* Sends state ("READY=1", "STOPPING=1", "STATUS=...", lines joined by '\n'). Returns 0 when
 * sent or when there is no socket to send to, else a negative errno (the caller logs it; the
 * service still runs, and systemd then times the start out, which is the right signal). */
int cli_notify(const char *state);
