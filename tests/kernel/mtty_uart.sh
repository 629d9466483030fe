# shellcheck shell=bash
# mtty_uart.sh — an mtty device's UART through the daemon's region access (BAR0: register 0 is
# the data register, whose writes land in the loop-back FIFO and whose reads pop it; 7 is the
# scratch register), for the kernel tests that plant data in a device and look for it after a
# restart or a migration. Sourced after lib.sh; UART_CTL names the CLI function to use (ctl,
# or a test's own on another socket).
#   reg_read ID REG        one byte, hex      reg_write ID REG HEX
#   fifo_push ID TEXT      each byte of TEXT into the FIFO
#   fifo_pop ID N          N bytes popped from the FIFO, hex, concatenated
UART_CTL=${UART_CTL:-ctl}
reg_read() { "$UART_CTL" region read "$1" 0 "$2" 1; }
reg_write() { "$UART_CTL" region write "$1" 0 "$2" "$3" >/dev/null; }
fifo_push() {
    local i
    for ((i = 0; i < ${#2}; i++)); do
        reg_write "$1" 0 "$(printf '%02x' "'${2:i:1}")"
    done
}
fifo_pop() {
    local i popped=''
    for ((i = 0; i < $2; i++)); do
        popped+=$(reg_read "$1" 0)
    done
    echo "$popped"
}
