/* A tiny C program that the hello-c example job compiles and runs. */
#include <stdio.h>

int main(void)
{
    long sum = 0;

    for (int i = 1; i <= 100; i++)
        sum += i;
    printf("hello from buildq, 1 + 2 + ... + 100 = %ld\n", sum);
    return sum == 5050 ? 0 : 1;
}
