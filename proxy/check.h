/*
 * check — `ddlguard check`: the proxy's policies over migration files, offline.
 */
#ifndef DDLG_CHECK_H
#define DDLG_CHECK_H

#include "proxy/config.h"

/* argv[0] is "check". Returns the exit status. */
int check_main(int argc, char **argv);

#endif
