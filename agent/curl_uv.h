/* curl_uv.h — libcurl's multi interface on a libuv loop (after curl's docs/examples/multi-uv.c):
 * curl says which sockets to watch (CURLMOPT_SOCKETFUNCTION → one uv_poll_t per socket) and
 * when to call it back (CURLMOPT_TIMERFUNCTION → one uv_timer_t); readiness goes back with
 * curl_multi_socket_action, and each finished transfer is removed from the multi handle and
 * handed to the owner's done callback. Used by the uploader and the HTTP driver. */
#ifndef AG_CURL_UV_H
#define AG_CURL_UV_H

#include <curl/curl.h>
#include <uv.h>

typedef struct ag_curl_uv ag_curl_uv;

/* A transfer ended (already removed from the multi handle; the easy handle may be added
 * again from here). */
typedef void (*ag_curl_uv_done_fn)(void *ud, CURL *easy, CURLcode result);
/* Every loop handle of a closed ag_curl_uv is closed and its memory freed. */
typedef void (*ag_curl_uv_closed_fn)(void *ud);

/* A multi handle driven by loop; done(ud, ...) for every finished transfer. NULL when out of
 * memory or libcurl fails. */
ag_curl_uv *ag_curl_uv_new(uv_loop_t *loop, ag_curl_uv_done_fn done, void *ud);
/* Start a transfer on easy (curl_multi_add_handle); CURLM_OK or curl's error. */
CURLMcode ag_curl_uv_add(ag_curl_uv *cu, CURL *easy);
/* Cancel a transfer in flight (curl_multi_remove_handle); harmless when easy is idle. */
void ag_curl_uv_remove(ag_curl_uv *cu, CURL *easy);
/* Stop: clean up the multi handle (remove your easy handles first) and close the loop
 * handles; closed(ud) runs once they are all closed and cu is freed (closed may be NULL).
 * No done callback after this. */
void ag_curl_uv_close(ag_curl_uv *cu, ag_curl_uv_closed_fn closed);

#endif
