// Tailmon dashboard: administration (filled in the next commits).
//
// Exports:
//   openAdmin(session)   the admin dialog
'use strict';

export function openAdmin(session) {
  void session;
}
