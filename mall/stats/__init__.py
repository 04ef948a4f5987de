"""Statistics of the mall for the dashboards and the public statistics page: spend by mode, 品目,
region and month; the SME share; savings; cases; price alerts; times to confirm and to pay."""
