/* log — see log.h. */
#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>

enum log_level log_current_level = LOG_LVL_INFO;
static FILE *log_fp;

bool log_parse_level(const char *s, enum log_level *out)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(s, names[i])) {
			*out = (enum log_level)i;
			return true;
		}
	return false;
}

bool log_open(const char *path, char *err, size_t errlen)
{
	FILE *fp = NULL;
	if (path && *path) {
		/* Created 0640, as the audit log; an existing file keeps its mode. */
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		fp = fd >= 0 ? fdopen(fd, "a") : NULL;
		if (!fp) {
			snprintf(err, errlen, "cannot open logfile \"%s\": %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return false;
		}
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	if (log_fp)
		fclose(log_fp);
	log_fp = fp;
	return true;
}

void log_close(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
}

void log_write(enum log_level lvl, const char *prefix, const char *fmt, ...)
{
	static const char *tags[] = { "ERROR", "WARNING", "LOG", "DEBUG" };
	char ts[64], line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	int n = snprintf(line, sizeof(line), "%s.%03d UTC [%d] %s %s%s", ts, (int)(tv.tv_usec / 1000),
			 (int)getpid(), tags[lvl], prefix ? prefix : "", prefix ? " " : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One event, one line: names from SQL (a quoted identifier may hold a newline), a
	 * client's application_name or a policy's message cannot forge log lines. */
	for (char *p = line + n; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	FILE *fp = log_fp ? log_fp : stderr;
	fprintf(fp, "%s\n", line);
	if (fp == stderr)
		fflush(stderr);
}
