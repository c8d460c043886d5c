# IOASID_CC_CHECK_FLAG(FLAG, ACTION-IF-OK)
# Does $CC accept FLAG (with -Werror, so unknown warnings count as errors)?
AC_DEFUN([IOASID_CC_CHECK_FLAG], [
	AC_MSG_CHECKING([whether $CC accepts $1])
	ioasid_save_CFLAGS="$CFLAGS"
	CFLAGS="$CFLAGS -Werror $1"
	AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
			  [AC_MSG_RESULT([yes]); $2], [AC_MSG_RESULT([no])])
	CFLAGS="$ioasid_save_CFLAGS"
])
