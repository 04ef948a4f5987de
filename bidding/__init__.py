"""Online inquiry (在线询价) and reverse auctions (反向竞价): rules, procedures and live rooms."""
